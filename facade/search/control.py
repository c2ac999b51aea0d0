"""The control parameters: what a search accepts besides its filters (R4 search §3.1.1.5,
http §2.21.0.12). One table for the search and ``$everything`` parsers, granular scope
filters (which may not use them), the CapabilityStatement and the OpenAPI document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facade.errors import InvalidRequest


@dataclass(frozen=True)
class Control:
    name: str
    type: str  # integer | string | token (how the OpenAPI document and CapabilityStatement type it)
    description: str
    values: tuple[str, ...] = ()  # the only values accepted, when the set is closed
    pattern: str | None = None  # a regular expression every value matches (for the OpenAPI document)


_TYPE_LIST = r"^[A-Za-z][A-Za-z0-9]*(,[A-Za-z][A-Za-z0-9]*)*$"
SEARCH = {
    control.name: control
    for control in (
        Control("_count", "integer", "Page size; capped at the server maximum", pattern=r"^[0-9]{1,9}$"),
        Control(
            "_sort",
            "string",
            "Comma-separated sortable parameters, '-' for descending",
            pattern=r"^-?[A-Za-z_][A-Za-z0-9_-]*(,-?[A-Za-z_][A-Za-z0-9_-]*)*$",
        ),
        Control("_total", "token", "'accurate' to count all matches (costs a COUNT query); default none", ("none", "estimate", "accurate")),
        Control(
            "_summary",
            "token",
            "true (summary elements), text, data, count (the total only) or false",
            ("true", "text", "data", "count", "false"),
        ),
        Control(
            "_elements",
            "string",
            "Comma-separated top-level elements to return (the rest are left out, meta.tag SUBSETTED)",
            pattern=_TYPE_LIST,
        ),
        Control(
            "_include",
            "string",
            "Type:param[:Target] — also return the resources the matches refer to (repeatable)",
            pattern=r"^[A-Za-z]+:[A-Za-z_][A-Za-z0-9_-]*(:[A-Za-z]+)?$",
        ),
        Control(
            "_revinclude",
            "string",
            "Type:param — also return resources of Type that refer to the matches (repeatable)",
            pattern=r"^[A-Za-z]+:[A-Za-z_][A-Za-z0-9_-]*(:[A-Za-z]+)?$",
        ),
        Control("_cursor", "string", "Paging position; take it from the Bundle's next link, never build it", pattern=r"^[A-Za-z0-9_-]+$"),
    )
}
EVERYTHING = {
    control.name: control
    for control in (
        Control("_count", "integer", "Page size; capped at the server maximum", pattern=r"^[0-9]{1,9}$"),
        Control("_since", "string", "Only resources whose meta.lastUpdated is at or after this instant"),
        Control("_type", "string", "Comma-separated resource types to return (default: every type in the compartment)", pattern=_TYPE_LIST),
        Control("_cursor", "string", "Paging position; take it from the Bundle's next link, never build it", pattern=r"^[A-Za-z0-9_-]+$"),
    )
}
# Rendering, not searching: accepted everywhere and left to the HTTP layer.
WEB = {
    control.name: control
    for control in (
        Control(
            "_format",
            "token",
            "json, application/json or application/fhir+json",
            ("json", "application/json", "application/fhir+json", "application/json+fhir"),
        ),
        Control("_pretty", "token", "true: indented JSON", ("true", "false")),
    )
}
# Names that change paging or rendering, never which rows match: a scope filter may not use them.
NAMES = frozenset(SEARCH) | frozenset(EVERYTHING) | frozenset(WEB)

_DIGITS = re.compile(r"[0-9]{1,18}")


def parse_count(raw: str, max_count: int, *, minimum: int = 0) -> int:
    """``_count``: ASCII digits only (``int()`` would take '٣' or '1_000'), at least ``minimum``,
    capped at ``max_count``."""
    if _DIGITS.fullmatch(raw) is None:
        if raw.isascii() and raw.isdigit():  # longer than any page: as large as allowed
            return max_count
        raise InvalidRequest(f"_count must be a whole number of at least {minimum}, got '{raw[:40]}'", expression="_count")
    count = int(raw)
    if count < minimum:
        raise InvalidRequest(f"_count must be a whole number of at least {minimum}, got '{raw}'", expression="_count")
    return min(count, max_count)
