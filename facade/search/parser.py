"""Query string (GET) or form body (POST _search) to a typed :class:`SearchRequest`.

The parser is handed the catalogue of parameters the mapping supports for the
resource type; it knows nothing about tables or columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from facade.errors import InvalidRequest, SearchTooBroad, UnsupportedParameter
from facade.search import control
from facade.search.dates import parse_date_range
from facade.search.escaping import split_escaped, unescape
from facade.search.includes import ANY_TARGET, Catalogues, parse_include
from facade.search.params import (
    DateValue,
    MissingValue,
    Prefix,
    ReferenceValue,
    SearchClause,
    SearchParamDef,
    SearchValue,
    SortKey,
    StringValue,
    TokenValue,
)
from facade.search.request import SearchRequest

# Each value becomes SQL to build and run (SQLite also caps expression depth near 1,000),
# so one request cannot ask for unbounded work.
MAX_VALUES_PER_PARAMETER = 100
MAX_CLAUSES = 50
MAX_INCLUDES = 10
_PREFIXES = {p.value: p for p in Prefix}


def parse_search(
    resource_type: str,
    pairs: Iterable[tuple[str, str]],
    catalogue: Mapping[str, SearchParamDef],
    *,
    strict: bool = False,
    default_count: int = 20,
    max_count: int = 1000,
    catalogues: Catalogues | None = None,
) -> SearchRequest:
    """``catalogues``: every served type's parameters, to check ``_include``/``_revinclude``
    (without it, includes are unsupported). A ``_cursor`` is kept as received: it can only be
    checked against the query as it will run, once authorization has narrowed it
    (facade/search/cursor.py ``resume``)."""
    catalogues = catalogues if catalogues is not None else {resource_type: catalogue}
    clauses: list[SearchClause] = []
    includes: list = []
    summary: str | None = None
    elements: tuple[str, ...] = ()
    ignored: list[str] = []
    sort: tuple[SortKey, ...] = ()
    count = default_count
    cursor_token: str | None = None
    total = "none"
    summary_count = False

    pairs = list(pairs)
    if any(k == "_summary" and v for k, v in pairs) and any(k == "_elements" and v for k, v in pairs):
        raise InvalidRequest("_summary and _elements cannot be used together", expression="_elements")
    for key, raw in pairs:
        if raw == "" or key in control.WEB:
            continue  # empty parameters are ignored (R4 search §3.1.1.4)
        if "\x00" in raw:  # would cut a LIKE pattern short in SQLite and is an error in PostgreSQL
            raise InvalidRequest(f"'{key}' contains a NUL character", expression=key)
        name, _, modifier = key.partition(":")
        if name == "_count":
            count = control.parse_count(raw, max_count)
        elif name == "_sort":
            sort = _parse_sort(raw, catalogue)
        elif name == "_cursor":
            cursor_token = raw
        elif name == "_total":
            if raw not in control.SEARCH["_total"].values:
                raise InvalidRequest("_total must be none, estimate or accurate", expression="_total")
            total = "accurate" if raw == "accurate" else "none"  # an estimate would cost a count too
        elif name == "_summary":
            if raw not in control.SEARCH["_summary"].values:
                raise InvalidRequest("_summary must be true, text, data, count or false", expression="_summary")
            summary_count = raw == "count"
            summary = raw if raw in ("true", "text", "data") else None
        elif name == "_elements":
            elements = _parse_elements(raw)
        elif name in ("_include", "_revinclude"):
            include = parse_include(resource_type, key, raw, catalogues)
            if include is None:
                if strict:
                    raise UnsupportedParameter(
                        f"{key}={raw} is not supported for {resource_type}: name a reference parameter the server "
                        "declares (see the CapabilityStatement's searchInclude/searchRevInclude)",
                        expression=key,
                    )
                ignored.append(f"{key}={raw}")
            elif include not in includes:
                includes.append(include)
                if len(includes) > MAX_INCLUDES:  # each one is another statement per page
                    raise SearchTooBroad(f"At most {MAX_INCLUDES} _include/_revinclude parameters per request")
        elif name in catalogue:
            clauses.append(_parse_clause(catalogue[name], modifier or None, raw))
            if len(clauses) > MAX_CLAUSES:
                raise SearchTooBroad(f"At most {MAX_CLAUSES} search parameters per request")
        else:
            if strict:
                raise UnsupportedParameter(f"Unknown or unsupported search parameter '{key}' for {resource_type}", expression=key)
            ignored.append(key)

    if count == 0:
        summary_count = True
    request = SearchRequest(
        resource_type=resource_type,
        clauses=tuple(clauses),
        sort=sort,
        count=count,
        total=total,
        summary_count=summary_count,
        ignored=tuple(ignored),
        includes=tuple(includes),
        summary=summary,
        elements=elements,
        cursor_token=cursor_token,
    )
    return request


def _parse_elements(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    for name in names:
        if not name.isascii() or not name.replace("_", "").isalnum() or "." in name:
            raise InvalidRequest(f"_elements takes top-level element names, got '{name}'", expression="_elements")
    return names


def _parse_sort(raw: str, catalogue: Mapping[str, SearchParamDef]) -> tuple[SortKey, ...]:
    keys = []
    for item in raw.split(","):
        descending = item.startswith("-")
        name = item[1:] if descending else item
        definition = catalogue.get(name)
        if definition is None or not definition.sortable:
            raise InvalidRequest(f"Cannot sort by '{name}'", expression="_sort")
        keys.append(SortKey(name, descending))
    return tuple(keys)


def _parse_clause(definition: SearchParamDef, modifier: str | None, raw: str) -> SearchClause:
    if modifier is not None and modifier not in definition.modifiers:
        polymorphic = definition.target in ANY_TARGET and modifier[:1].isupper() and definition.refers_to(modifier)
        if not (definition.type == "reference" and (modifier == definition.target or polymorphic)):
            raise InvalidRequest(
                f"Modifier ':{modifier}' is not supported on {definition.type} parameter '{definition.name}'",
                expression=f"{definition.name}:{modifier}",
            )
        modifier = None  # patient:Patient=123 is the same as patient=123 (bindings match the id)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise InvalidRequest(f"{definition.name}:missing must be true or false", expression=definition.name)
        values: tuple[SearchValue, ...] = (MissingValue(raw == "true"),)
    else:
        items = split_escaped(raw, ",")
        if len(items) > MAX_VALUES_PER_PARAMETER:
            raise SearchTooBroad(
                f"'{definition.name}' has {len(items)} values; at most {MAX_VALUES_PER_PARAMETER} are allowed",
                expression=definition.name,
            )
        values = tuple(_parse_value(definition, item) for item in items)
    return SearchClause(definition.name, definition.type, modifier, values, raw)


def _parse_value(definition: SearchParamDef, item: str) -> SearchValue:
    if definition.type == "token":
        return _parse_token(item)
    if definition.type == "string":
        return StringValue(unescape(item))
    if definition.type == "date":
        return _parse_date(definition.name, item)
    if definition.type == "reference":
        return _parse_reference(definition, unescape(item))
    raise InvalidRequest(f"Parameter type {definition.type} is not supported")  # pragma: no cover


def _parse_token(item: str) -> TokenValue:
    parts = split_escaped(item, "|")
    if len(parts) == 1:
        return TokenValue(None, unescape(parts[0]))
    if len(parts) == 2:
        system, code = unescape(parts[0]), unescape(parts[1])
        return TokenValue(system, code or None)
    raise InvalidRequest(f"'{item}' is not a valid token (expected [system|]code)")


def _parse_date(name: str, item: str) -> DateValue:
    prefix = Prefix.EQ
    if item[:2] in _PREFIXES:
        prefix = _PREFIXES[item[:2]]
        item = item[2:]
    elif item[:2].isalpha():
        raise InvalidRequest(f"'{item[:2]}' is not a supported date prefix for '{name}'", expression=name)
    try:
        low, high = parse_date_range(item)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{name}: {exc.diagnostics}", expression=name) from None
    return DateValue(prefix, low, high)


def _parse_reference(definition: SearchParamDef, item: str) -> ReferenceValue:
    # Accepts "id", "Type/id" and absolute "http://base/Type/id" (optionally with /_history/n).
    segments = item.rstrip("/").split("/")
    if "_history" in segments:
        segments = segments[: segments.index("_history")]
    if len(segments) >= 2:
        ref_type, ref_id = segments[-2], segments[-1]
        if definition.target and not definition.refers_to(ref_type):
            kinds = ", ".join(definition.targets) or definition.target
            raise InvalidRequest(f"'{definition.name}' refers to {kinds}, not {ref_type}", expression=definition.name)
        return ReferenceValue(ref_type, ref_id)
    return ReferenceValue(None if definition.target in ANY_TARGET else definition.target, item)
