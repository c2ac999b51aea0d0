"""Paging cursors and the control parameters, without HTTP or a database."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from facade.errors import InvalidRequest
from facade.search import control
from facade.search.cursor import decode_cursor, encode_cursor, resume
from facade.search.params import SearchClause, TokenValue
from facade.search.request import SearchRequest


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("7", 7), ("1000", 1000), ("5000", 1000), ("9" * 40, 1000)])
def test_count_is_ascii_digits_capped_at_the_maximum(raw, expected):
    assert control.parse_count(raw, 1000) == expected


@pytest.mark.parametrize("raw", ["-1", "1e3", "٣", "1_000", " 5", "5 ", "0x10", "", "²"])
def test_count_refuses_anything_but_plain_digits(raw):
    with pytest.raises(InvalidRequest, match="_count"):
        control.parse_count(raw, 1000)


def test_everything_needs_a_count_of_at_least_one():
    with pytest.raises(InvalidRequest):
        control.parse_count("0", 100, minimum=1)


def test_every_control_parameter_with_closed_values_lists_them():
    assert control.SEARCH["_total"].values == ("none", "estimate", "accurate")
    assert set(control.SEARCH["_summary"].values) == {"true", "text", "data", "count", "false"}
    assert {"_count", "_cursor", "_format", "_pretty", "_since", "_type"} <= control.NAMES


def test_a_cursor_round_trips_and_refuses_what_it_was_not_issued_for():
    by_code = SearchClause("code", "token", None, (TokenValue(None, "x"),), raw="x")
    request = SearchRequest("Observation", clauses=(by_code,))
    token = encode_cursor(request.fingerprint(), ("2024-01-01", 0, "id-9"))
    assert decode_cursor(token) == (request.fingerprint(), ("2024-01-01", 0, "id-9"), False)
    assert resume(dataclasses.replace(request, cursor_token=token)).cursor == ("2024-01-01", 0, "id-9")
    before = encode_cursor(request.fingerprint(), ("2024-01-01", 0, "id-9"), before=True)
    assert decode_cursor(before) == (request.fingerprint(), ("2024-01-01", 0, "id-9"), True)
    assert resume(dataclasses.replace(request, cursor_token=before)).before
    other = dataclasses.replace(request, clauses=(), cursor_token=token)
    with pytest.raises(InvalidRequest, match="different search"):
        resume(other)
    narrowed = dataclasses.replace(request, cursor_token=token, restrictions=(((by_code,),),))
    with pytest.raises(InvalidRequest, match="different search"):
        resume(narrowed)  # the same search under another grant is another search


def _raw(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "garbage",
    [
        "!!!",
        "e30",
        "W10",
        encode_cursor("x", ({"a": 1},)),
        encode_cursor("x", ([1],)),
        _raw(b'["x", [1], "after"]'),
        _raw(b'["x", [1], "before", 1]'),
    ],
)
def test_a_cursor_that_is_not_ours_is_a_400(garbage):
    with pytest.raises(InvalidRequest, match="not a paging cursor"):
        decode_cursor(garbage)


def test_a_request_without_a_cursor_starts_at_the_beginning():
    assert resume(SearchRequest("Patient")).cursor is None
