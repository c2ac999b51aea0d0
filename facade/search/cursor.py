"""Stateless keyset paging cursors.

A ``next`` link carries the sort-key values of the last entry on the page, plus
a fingerprint of the query, base64url-encoded; a ``previous`` link carries the first
entry's values and a mark that the page ends before them (read in reverse order). Any worker can serve any page:
there is no page store to expire or share, and rows are never skipped or repeated
because the order always ends in the resource id.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from facade.errors import InvalidRequest

if TYPE_CHECKING:
    from facade.search.request import SearchRequest


def encode_cursor(fingerprint: str, position: tuple, *, before: bool = False) -> str:
    payload = orjson.dumps([fingerprint, list(position), *(["before"] if before else [])])
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_cursor(token: str) -> tuple[str, tuple, bool]:
    """(query fingerprint, keyset position, whether the page ends before the position)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        fingerprint, position, *direction = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(fingerprint, str) or not isinstance(position, list) or direction not in ([], ["before"]):
            raise ValueError
        if not all(v is None or isinstance(v, (str, int, float)) for v in position):
            raise ValueError
        if any(isinstance(v, str) and "\x00" in v for v in position):  # never issued; PostgreSQL refuses it
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidRequest("_cursor is not a paging cursor issued by this server", expression="_cursor") from None
    return fingerprint, tuple(position), bool(direction)


def resume(request: SearchRequest) -> SearchRequest:
    """The request positioned at its ``_cursor``, which must have been issued for exactly this
    query as it runs (its clauses and its grant's restrictions): a cursor is never replayed on
    another search, nor under another token's narrowing."""
    if request.cursor_token is None:
        return request
    fingerprint, position, before = decode_cursor(request.cursor_token)
    if fingerprint != request.fingerprint():
        raise InvalidRequest("_cursor belongs to a different search; follow the Bundle's links", expression="_cursor")
    return replace(request, cursor=position, before=before)
