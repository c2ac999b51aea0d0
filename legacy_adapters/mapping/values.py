"""Value expressions: how one FHIR element value is made from legacy columns.

A value expression is a mapping-file dict with one source key and optional
transforms, compiled once into a function of a result row::

    {column: p.sex_cd, map: {M: male, F: female}, otherwise: unknown}
    {column: p.dob, date: "%Y%m%d", as: date}
    {template: "Patient/{p.pt_guid}"}
    {hook: lab_value, columns: [r.result_val, r.result_units]}
    {const: final}
    {column: r.test_cd, crosswalk: demo-lab}          # → standard codings + the local coding
    {hook: lab_quantity, columns: [...], units: demo-lab-units}   # Quantity gets UCUM system/code
    {column: m.unit_concept_id, lookup: concept, get: code}       # a code table's row, joined in SQL
    {first: [{column: m.measurement_datetime}, {column: m.measurement_date, as: date}]}
    {parts: {year: p.year_of_birth, month: p.month_of_birth, day: p.day_of_birth}}   # 1950, 1950-06…
    {column: s.npi, absent: ["0000000000"]}                       # sentinels mean "no value"
    {column: r.ref_text, range: {unit: {column: r.units}}, units: lab-units}  # '4.0-5.6' → referenceRange

``default`` gives the FHIR value for an absent legacy value; searches honour it too. A date
the column cannot hold as a date (junk) is absent, and reported to ``mapping check``
through :data:`JUNK`.

Strings are right-trimmed and empty strings count as absent: legacy CHAR
columns pad with blanks, and '' is how many of them say "no value".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from legacy_adapters.mapping.codings import crosswalk_codings, split_codings, ucum_units
from legacy_adapters.mapping.dates import says_no_date
from legacy_adapters.mapping.datetypes import PartsDate
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.format import VALUE_SOURCES
from legacy_adapters.mapping.ranges import parse_range
from legacy_adapters.mapping.yamlpos import plain

SOURCE_KEYS = VALUE_SOURCES
TRANSFORM_KEYS = (
    "map",
    "otherwise",
    "date",
    "as",
    "type",
    "case",
    "split_codings",
    "crosswalk",
    "units",
    "convert",
    "default",
    "absent",
    "lookup",
    "get",
    "range",
)
# Set by ``mapping check`` while it builds rows: called with (column, raw value) for each value
# a date column holds that is no date. Unset when serving: junk is then simply absent.
JUNK: ContextVar[Callable[[str, Any], None] | None] = ContextVar("junk", default=None)
TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?(?::[a-z]+)?)\}")  # "{p.uuid:uuid}": see columns.py

RowFn = Callable[[Any], Any]
COLLECTION_SEPARATOR = ","  # joins a collection's values into one column (values must not contain it)


class CompileContext(Protocol):
    def slot(self, ref: str) -> int: ...
    def hook(self, name: str) -> Callable[..., Any]: ...
    def date_format(self, fmt: str | None, column: Any = None) -> Any: ...  # a date codec (dates.py, datetypes.py)

    # Contexts bound to a database also offer ``lookup(name, ref)`` → (CodeTable, code, system,
    # display slots): a code table joined on the column ``ref``.

    # Contexts of mappings with a ``terminology:`` section also offer ``terminology`` (a
    # terminology.registry.Terminology); crosswalk and units transforms need it.


def is_value_expression(node: Any) -> bool:
    return isinstance(node, dict) and any(key in node for key in SOURCE_KEYS)


def clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.rstrip()
        return value or None
    return value


def compile_value(spec: Mapping[str, Any], ctx: CompileContext, where: str) -> RowFn:
    _check_keys(spec, where)
    fetch = _compile_source(spec, ctx, where)
    if spec.get("absent"):
        fetch = _without(fetch, spec["absent"])
    if "range" in spec:
        fetch = _range(fetch, spec["range"], ctx, where)
    for transform in _compile_transforms(spec, ctx, where):
        fetch = _chain(fetch, transform)
    if "default" in spec:  # what an absent legacy value means in FHIR (e.g. gender 'unknown')
        fetch = _with_default(fetch, plain(spec["default"]))
    return fetch


def _check_keys(spec: Mapping[str, Any], where: str) -> None:
    unknown = set(spec) - set(SOURCE_KEYS) - set(TRANSFORM_KEYS) - {"columns", "args"}
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)} in value expression")


@dataclass(frozen=True)
class Steps:
    """A value expression as straight-line steps, for templates to write inline: the columns
    read (``trim``: right-trimmed, '' absent; dates are read raw), a hook they are passed to (else
    the one column is the value), then each transform while the value is present. This is what
    :func:`compile_value` composes for a column or a hook without arguments, without a
    function call per step."""

    slots: tuple[int, ...]
    trim: bool
    hook: Callable[..., Any] | None
    transforms: tuple[Callable[[Any], Any], ...]


def value_steps(spec: Mapping[str, Any], ctx: CompileContext, where: str) -> Steps | None:
    """The expression as :class:`Steps`, or None when it needs more (first, default, a range…)."""
    _check_keys(spec, where)
    if set(spec) & {"const", "template", "first", "parts", "lookup", "absent", "range", "default", "args"}:
        return None
    if "column" in spec and "hook" not in spec:
        trim = not ("date" in spec or "as" in spec)
        return Steps((ctx.slot(spec["column"]),), trim, None, tuple(_compile_transforms(spec, ctx, where)))
    if "hook" in spec and "column" not in spec:
        hook = ctx.hook(spec["hook"])
        slots = tuple(ctx.slot(ref) for ref in spec.get("columns", []))
        return Steps(slots, True, hook, tuple(_compile_transforms(spec, ctx, where)))
    return None


def _range(fetch: RowFn, options: Any, ctx: CompileContext, where: str) -> RowFn:
    """Printed range text → a referenceRange item (ranges.py); ``unit``, a value expression, gives
    low and high their unit (the ``units`` transform then adds UCUM)."""
    if options is True or options is None:
        options = {}
    if not isinstance(options, Mapping) or set(options) - {"unit"}:
        raise MappingError(f"{where}: 'range' is true or {{unit: value expression}}")
    unit = compile_value(options["unit"], ctx, f"{where}.range.unit") if "unit" in options else None

    def value(row: Any) -> Any:
        text = fetch(row)
        return None if text is None else parse_range(str(text), unit(row) if unit is not None else None)

    return value


def _with_default(fetch: RowFn, default: Any) -> RowFn:
    def value(row: Any) -> Any:
        found = fetch(row)
        return default if found is None else found

    return value


def _without(fetch: RowFn, sentinels: list) -> RowFn:
    """Sentinel values ('0000000000', 0, 'UNK') read as absent."""
    absent = {str(value) for value in sentinels}

    def value(row: Any) -> Any:
        found = fetch(row)
        return None if found is None or str(found) in absent else found

    return value


def _chain(fetch: RowFn, transform: Callable[[Any], Any]) -> RowFn:
    def value(row: Any) -> Any:
        raw = fetch(row)
        return None if raw is None else transform(raw)

    return value


def _compile_source(spec: Mapping[str, Any], ctx: CompileContext, where: str) -> RowFn:
    if "lookup" in spec:
        return _lookup(spec, ctx, where)
    if "first" in spec:
        return _first([compile_value(item, ctx, f"{where}.first[{i}]") for i, item in enumerate(spec["first"])])
    if "parts" in spec:
        return _parts(spec["parts"], ctx)
    if "column" in spec and ("date" in spec or "as" in spec):  # dates are read raw: the codec decodes
        index = ctx.slot(spec["column"])
        return lambda row: row[index]
    if "column" in spec:
        index = ctx.slot(spec["column"])

        def column(row: Any) -> Any:
            return clean(row[index])

        return column
    if "const" in spec:
        constant = plain(spec["const"])
        return lambda row: constant
    if "template" in spec:
        return compile_template_string(spec["template"], ctx)
    hook = ctx.hook(spec["hook"])
    indexes = [ctx.slot(ref) for ref in spec.get("columns", [])]
    args = plain(dict(spec.get("args", {})))
    # Hooks run for most resources built: the usual one or two columns without arguments are
    # passed directly (a generator and ``**{}`` per call cost more than the common hook itself).
    if not args and len(indexes) == 1:
        (only,) = indexes
        return lambda row: hook(clean(row[only]))
    if not args and len(indexes) == 2:
        first, second = indexes
        return lambda row: hook(clean(row[first]), clean(row[second]))

    def call_hook(row: Any) -> Any:
        return hook(*[clean(row[i]) for i in indexes], **args)

    return call_hook


def _first(alternatives: list[RowFn]) -> RowFn:
    def first(row: Any) -> Any:
        for alternative in alternatives:
            found = alternative(row)
            if found is not None:
                return found
        return None

    return first


def _parts(parts: Mapping[str, str], ctx: CompileContext) -> RowFn:
    """Year, month and day columns → ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
    refs = [parts.get(name) for name in ("year", "month", "day")]
    indexes = [ctx.slot(ref) if ref else None for ref in refs]

    def partial_date(row: Any) -> str | None:
        year, month, day = (row[i] if i is not None else None for i in indexes)
        if year is None:
            return None
        found = PartsDate.to_fhir(year, month, day)
        if found is None:
            _report(str(refs[0]), (year, month, day))
        return found

    return partial_date


def _lookup(spec: Mapping[str, Any], ctx: CompileContext, where: str) -> RowFn:
    """``{column: x, lookup: table}``: the code-table row joined on the column, as a Coding or one
    of its parts (``get: code | system | display``)."""
    if "column" not in spec:
        raise MappingError(f"{where}: 'lookup' needs the 'column' holding the code table's key")
    lookup = getattr(ctx, "lookup", None)
    if lookup is None:
        raise MappingError(f"{where}: code tables are looked up once the mapping is bound to its database")
    table, code, system, display = lookup(spec["lookup"], spec["column"])
    part = spec.get("get", "coding")
    if part == "code":
        return lambda row: clean(row[code])
    if part == "display":
        return lambda row: clean(row[display]) if display is not None else None
    if part == "system":
        return lambda row: table.system_of(row[system] if system is not None else None) if clean(row[code]) is not None else None
    return lambda row: table.coding(row[code], row[system] if system is not None else None, row[display] if display is not None else None)


def _report(ref: str, raw: Any) -> None:
    sink = JUNK.get()
    if sink is not None:
        sink(ref, raw)


def compile_template_string(template: str, ctx: CompileContext) -> RowFn:
    """``"Patient/{p.pt_guid}"``: absent if any referenced column is absent."""
    pieces = TEMPLATE_FIELD.split(template)  # literal, ref, literal, ref, ..., literal
    literals = pieces[0::2]
    indexes = [ctx.slot(ref) for ref in pieces[1::2]]

    def render(row: Any) -> str | None:
        out = [literals[0]]
        for index, literal in zip(indexes, literals[1:]):
            value = clean(row[index])
            if value is None:
                return None
            out.append(str(value))
            out.append(literal)
        return "".join(out)

    return render


def _compile_transforms(spec: Mapping[str, Any], ctx: CompileContext, where: str) -> list[Callable[[Any], Any]]:
    transforms: list[Callable[[Any], Any]] = []
    if "map" in spec:
        transforms.append(value_map(spec["map"], spec.get("otherwise")))
    elif "otherwise" in spec:
        raise MappingError(f"{where}: 'otherwise' needs 'map'")
    if ("date" in spec or "as" in spec) and "column" in spec:
        transforms.append(_date(spec, ctx, where))
    if "type" in spec:
        try:
            transforms.append(_TYPES[spec["type"]])
        except KeyError:
            raise MappingError(f"{where}: type must be one of {sorted(_TYPES)}") from None
    if "case" in spec:
        try:
            transforms.append(_CASES[spec["case"]])
        except KeyError:
            raise MappingError(f"{where}: case must be one of {sorted(_CASES)}") from None
    if "split_codings" in spec:
        options = dict(spec["split_codings"])
        if isinstance(options.get("systems"), str):  # the name of a terminology alias table
            options["systems"] = _terminology(ctx, where).current().aliases.get(options["systems"]) or _unknown(
                where, "alias table", options["systems"]
            )
        transforms.append(split_codings(**options))
    if "crosswalk" in spec:
        transforms.append(crosswalk_codings(_terminology(ctx, where), spec["crosswalk"], where))
    if "units" in spec:
        transforms.append(ucum_units(_terminology(ctx, where), spec["units"], bool(spec.get("convert")), where))
    elif "convert" in spec:
        raise MappingError(f"{where}: 'convert' needs 'units'")
    return transforms


def _date(spec: Mapping[str, Any], ctx: CompileContext, where: str) -> Callable[[Any], Any]:
    """A date column's value → FHIR text, through the codec of its format or its type."""
    fmt = ctx.date_format(spec.get("date"), spec["column"])
    kind = spec.get("as", "dateTime")
    if kind not in ("date", "dateTime", "instant"):
        raise MappingError(f"{where}: 'as' must be date, dateTime or instant")
    ref = str(spec["column"])

    def to_fhir(raw: Any) -> Any:
        if isinstance(raw, str):
            raw = raw.rstrip()
        found = fmt.to_fhir(raw, kind)
        if found is None and not says_no_date(raw):
            _report(ref, raw)
        return found

    return to_fhir


def _terminology(ctx: CompileContext, where: str) -> Any:
    terminology = getattr(ctx, "terminology", None)
    if terminology is None:
        raise MappingError(f"{where}: crosswalks and units need a 'terminology:' section in the mapping")
    return terminology


def _unknown(where: str, kind: str, name: str) -> Any:
    raise MappingError(f"{where}: unknown {kind} {name!r}")


def split_collection(text: Any) -> list[str]:
    """A collection column (see binder ``collections``) → its values, distinct and sorted
    (databases aggregate in no particular order; sorting keeps the output identical everywhere)."""
    if text is None:
        return []
    return sorted({item.strip() for item in str(text).split(COLLECTION_SEPARATOR) if item.strip()})


def value_map(table: Mapping[Any, Any], otherwise: Any = None) -> Callable[[Any], Any]:
    """Legacy value → FHIR value. ``otherwise: keep`` passes unmapped values through."""
    lookup = {str(k): plain(v) for k, v in table.items()}
    otherwise = plain(otherwise)
    keep = otherwise == "keep"

    def mapped(value: Any) -> Any:
        found = lookup.get(str(value))
        if found is not None:
            return found
        return value if keep else otherwise

    return mapped


def _decimal(value: Any) -> float | int | None:
    """A JSON number. Integral values are written without a fraction, so every engine's
    driver (SQLite gives 70, PostgreSQL 70.0 for the same NUMERIC) renders alike."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        number = value
    else:
        try:
            number = float(Decimal(str(value).strip()))
        except (InvalidOperation, ValueError):
            return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _boolean(value: Any) -> bool | None:
    text = str(value).strip().upper()
    if text in ("Y", "YES", "T", "TRUE", "1"):
        return True
    if text in ("N", "NO", "F", "FALSE", "0"):
        return False
    return None


_TYPES: dict[str, Callable[[Any], Any]] = {"decimal": _decimal, "integer": _integer, "boolean": _boolean, "string": str}
_CASES: dict[str, Callable[[str], str]] = {"title": lambda s: s.title(), "upper": str.upper, "lower": str.lower}
