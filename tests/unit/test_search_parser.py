"""Parsing query strings into typed search values (R4 search §3.1.1)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from facade.errors import InvalidRequest, UnsupportedParameter
from facade.search import DateValue, Prefix, ReferenceValue, SearchParamDef, StringValue, TokenValue, parse_search
from facade.search.cursor import decode_cursor, encode_cursor, resume
from facade.search.dates import parse_date_range
from facade.search.escaping import split_escaped, unescape

CATALOGUE = {
    "code": SearchParamDef("code", "token"),
    "name": SearchParamDef("name", "string"),
    "date": SearchParamDef("date", "date", sortable=True),
    "patient": SearchParamDef("patient", "reference", target="Patient"),
}


def parse(*pairs, **options):
    return parse_search("Observation", list(pairs), CATALOGUE, **options)


def test_escaped_separators():
    assert split_escaped(r"a\,b,c", ",") == [r"a\,b", "c"]
    assert unescape(r"a\,b\|c\$d\\e") == r"a,b|c$d\e"
    (clause,) = parse(("code", r"http://x|a\|b,c")).clauses
    assert clause.values == (TokenValue("http://x", "a|b"), TokenValue(None, "c"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abc", TokenValue(None, "abc")),
        ("http://loinc.org|2345-7", TokenValue("http://loinc.org", "2345-7")),
        ("|abc", TokenValue("", "abc")),
        ("http://loinc.org|", TokenValue("http://loinc.org", None)),
    ],
)
def test_token_forms(raw, expected):
    assert parse(("code", raw)).clauses[0].values == (expected,)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2024", datetime(2024, 1, 1), datetime(2025, 1, 1)),
        ("2024-02", datetime(2024, 2, 1), datetime(2024, 3, 1)),
        ("2024-12", datetime(2024, 12, 1), datetime(2025, 1, 1)),
        ("2024-02-29", datetime(2024, 2, 29), datetime(2024, 3, 1)),
        ("2024-02-29T10:15", datetime(2024, 2, 29, 10, 15), datetime(2024, 2, 29, 10, 16)),
        ("2024-02-29T10:15:30Z", datetime(2024, 2, 29, 10, 15, 30, tzinfo=UTC), datetime(2024, 2, 29, 10, 15, 31, tzinfo=UTC)),
    ],
)
def test_date_precision_ranges(text, low, high):
    assert parse_date_range(text) == (low, high)


def test_date_with_offset_keeps_it():
    low, _ = parse_date_range("2024-03-05T10:00:00+05:30")
    assert low.utcoffset() == timedelta(hours=5, minutes=30)


@pytest.mark.parametrize("text", ["2024-13", "2023-02-29", "24", "2024/01/01", "2024-01-01T25:00", "2024-01-01 10:00", ""])
def test_bad_dates_are_400(text):
    with pytest.raises(InvalidRequest):
        parse_date_range(text)


def test_date_prefixes():
    clause = parse(("date", "ge2024-01,lt2020")).clauses[0]
    assert [v.prefix for v in clause.values] == [Prefix.GE, Prefix.LT]
    assert isinstance(clause.values[0], DateValue)
    with pytest.raises(InvalidRequest):
        parse(("date", "ap2024"))


def test_reference_forms():
    for raw in ("123", "Patient/123", "http://example.org/fhir/Patient/123", "Patient/123/_history/2"):
        assert parse(("patient", raw)).clauses[0].values == (ReferenceValue("Patient", "123"),)
    with pytest.raises(InvalidRequest):
        parse(("patient", "Group/1"))
    assert parse(("patient:Patient", "1")).clauses[0].modifier is None


def test_modifiers_checked_per_type():
    assert parse(("name:exact", "Smith")).clauses[0].values == (StringValue("Smith"),)
    assert parse(("code:not", "x")).clauses[0].modifier == "not"
    for bad in ("name:below", "code:exact", "date:exact", "patient:identifier"):
        with pytest.raises(InvalidRequest):
            parse((bad, "x"))


def test_count_total_summary_sort():
    request = parse(("_count", "5000"), ("_sort", "-date"), ("_total", "accurate"), max_count=1000)
    assert request.count == 1000 and str(request.sort[0]) == "-date" and request.total == "accurate"
    assert parse(("_count", "0")).summary_count
    assert parse(("_summary", "count")).summary_count
    with pytest.raises(InvalidRequest):
        parse(("_sort", "name"))  # not declared sortable
    with pytest.raises(InvalidRequest):
        parse(("_count", "1.5"))


def test_unknown_parameters_lenient_and_strict():
    assert parse(("bogus", "1")).ignored == ("bogus",)
    with pytest.raises(UnsupportedParameter):
        parse(("bogus", "1"), strict=True)


def test_links_carry_applied_parameters_in_order():
    request = parse(("name", "smi"), ("bogus", "1"), ("_count", "10"), ("code", "a,b"))
    assert request.link_params() == [("name", "smi"), ("code", "a,b"), ("_count", "10")]


def test_cursor_round_trip_and_binding_to_query():
    request = parse(("name", "smi"))
    token = encode_cursor(request.fingerprint(), ("2024", 0, "abc"))
    assert decode_cursor(token) == (request.fingerprint(), ("2024", 0, "abc"), False)
    assert parse(("name", "smi"), ("_cursor", token)).cursor is None  # kept as received until resumed
    assert resume(parse(("name", "smi"), ("_cursor", token))).cursor == ("2024", 0, "abc")
    with pytest.raises(InvalidRequest):
        resume(parse(("name", "jon"), ("_cursor", token)))  # a cursor of another search
    narrowed = dataclasses.replace(parse(("name", "smi"), ("_cursor", token)), restrictions=((parse(("name", "x")).clauses,),))
    with pytest.raises(InvalidRequest):
        resume(narrowed)  # nor of the same search under another grant
    for garbage in ("!!!", "e30", encode_cursor("x", ({"a": 1},))):  # not base64 / '{}' / non-scalar keys
        with pytest.raises(InvalidRequest):
            decode_cursor(garbage)
