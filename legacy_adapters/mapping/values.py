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

``default`` gives the FHIR value for an absent legacy value; searches honour it too.

Strings are right-trimmed and empty strings count as absent: legacy CHAR
columns pad with blanks, and '' is how many of them say "no value".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.mapping.errors import MappingError

SOURCE_KEYS = ("column", "const", "template", "hook")
TRANSFORM_KEYS = ("map", "otherwise", "date", "as", "type", "case", "split_codings", "crosswalk", "units", "convert", "default")
TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?(?::[a-z]+)?)\}")  # "{p.uuid:uuid}": see columns.py

RowFn = Callable[[Any], Any]
COLLECTION_SEPARATOR = ","  # joins a collection's values into one column (values must not contain it)


class CompileContext(Protocol):
    def slot(self, ref: str) -> int: ...
    def hook(self, name: str) -> Callable[..., Any]: ...
    def date_format(self, fmt: str) -> LegacyDateFormat: ...

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
    unknown = set(spec) - set(SOURCE_KEYS) - set(TRANSFORM_KEYS) - {"columns", "args"}
    if unknown:
        raise MappingError(f"{where}: unknown keys {sorted(unknown)} in value expression")
    fetch = _compile_source(spec, ctx, where)
    for transform in _compile_transforms(spec, ctx, where):
        fetch = _chain(fetch, transform)
    if "default" in spec:  # what an absent legacy value means in FHIR (e.g. gender 'unknown')
        fetch = _with_default(fetch, spec["default"])
    return fetch


def _with_default(fetch: RowFn, default: Any) -> RowFn:
    def value(row: Any) -> Any:
        found = fetch(row)
        return default if found is None else found

    return value


def _chain(fetch: RowFn, transform: Callable[[Any], Any]) -> RowFn:
    def value(row: Any) -> Any:
        raw = fetch(row)
        return None if raw is None else transform(raw)

    return value


def _compile_source(spec: Mapping[str, Any], ctx: CompileContext, where: str) -> RowFn:
    if "column" in spec:
        index = ctx.slot(spec["column"])

        def column(row: Any) -> Any:
            return clean(row[index])

        return column
    if "const" in spec:
        constant = spec["const"]
        return lambda row: constant
    if "template" in spec:
        return compile_template_string(spec["template"], ctx)
    hook = ctx.hook(spec["hook"])
    indexes = [ctx.slot(ref) for ref in spec.get("columns", [])]
    args = dict(spec.get("args", {}))

    def call_hook(row: Any) -> Any:
        return hook(*(clean(row[i]) for i in indexes), **args)

    return call_hook


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
    if "date" in spec:
        fmt = ctx.date_format(spec["date"])
        kind = spec.get("as", "dateTime")
        if kind not in ("date", "dateTime", "instant"):
            raise MappingError(f"{where}: 'as' must be date, dateTime or instant")
        transforms.append(lambda text: fmt.to_fhir(text, kind))
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


def _terminology(ctx: CompileContext, where: str):
    terminology = getattr(ctx, "terminology", None)
    if terminology is None:
        raise MappingError(f"{where}: crosswalks and units need a 'terminology:' section in the mapping")
    return terminology


def _unknown(where: str, kind: str, name: str) -> Any:
    raise MappingError(f"{where}: unknown {kind} {name!r}")


def crosswalk_codings(terminology: Any, name: str, where: str) -> Callable[[Any], list[dict]]:
    """Local code → its standard codings plus the local coding (an unmapped code keeps the local
    coding alone). Reads the terminology's current snapshot, so a reload applies at once.

    After ``split_codings`` the value is a list of codings: those in the crosswalk's local system
    are translated the same way, the others (standard codes the legacy stored itself) are kept,
    and a coding that appears twice is given once."""
    if name not in terminology.current().crosswalks:
        _unknown(where, "crosswalk", name)

    def codings(value: Any) -> list[dict]:
        crosswalk = terminology.current().crosswalks.get(name)
        if isinstance(value, list):
            return _translated_codings(value, crosswalk)
        if crosswalk is None:  # removed by a reload: keep the local code rather than drop it
            return [{"code": str(value)}]
        return crosswalk.codings_for(str(value))

    return codings


def _translated_codings(codings: list[dict], crosswalk: Any) -> list[dict]:
    out: dict[tuple[Any, Any], dict] = {}
    for coding in codings:
        local = crosswalk is not None and coding.get("system") == crosswalk.local_system
        for found in crosswalk.codings_for(coding["code"]) if local else [coding]:
            key = (found.get("system"), found.get("code"))
            if key not in out:
                out[key] = found
            elif found.get("display") and not out[key].get("display"):
                out[key] = {**out[key], "display": found["display"]}
    return list(out.values())


def ucum_units(terminology: Any, name: str, convert: bool, where: str) -> Callable[[Any], Any]:
    """A legacy unit string → its UCUM code; a Quantity dict → the same with UCUM system and code
    (and, with ``convert: true``, the value converted where the unit table gives a factor)."""
    if name not in terminology.current().units:
        _unknown(where, "unit table", name)

    def to_ucum(value: Any) -> Any:
        table = terminology.current().units.get(name)
        units = table.units if table is not None else {}
        if not isinstance(value, dict):
            found = units.get(str(value))
            return found.ucum_code if found else None
        found = units.get(value.get("unit")) if value.get("unit") else None
        if found is None:
            return value  # an unknown unit keeps its text and gets no code, never a guessed one
        quantity = {k: v for k, v in value.items() if k not in ("system", "code")}
        if convert and found.convert_to and found.factor is not None and isinstance(quantity.get("value"), (int, float)):
            number = round(quantity["value"] * found.factor, 6)
            quantity.update(value=int(number) if number.is_integer() else number, unit=found.convert_to)
            quantity.update(system=UCUM, code=found.convert_to)
        else:
            quantity.update(system=UCUM, code=found.ucum_code)
        return quantity

    return to_ucum


UCUM = "http://unitsofmeasure.org"


def split_collection(text: Any) -> list[str]:
    """A collection column (see binder ``collections``) → its values, distinct and sorted
    (databases aggregate in no particular order; sorting keeps the output identical everywhere)."""
    if text is None:
        return []
    return sorted({item.strip() for item in str(text).split(COLLECTION_SEPARATOR) if item.strip()})


def value_map(table: Mapping[Any, Any], otherwise: Any = None) -> Callable[[Any], Any]:
    """Legacy value → FHIR value. ``otherwise: keep`` passes unmapped values through."""
    lookup = {str(k): v for k, v in table.items()}
    keep = otherwise == "keep"

    def mapped(value: Any) -> Any:
        found = lookup.get(str(value))
        if found is not None:
            return found
        return value if keep else otherwise

    return mapped


def split_codings(
    separator: str = ";", system_separator: str = ":", systems: Mapping[str, str] | None = None
) -> Callable[[str], list[dict] | None]:
    """``'ICD10:E11.9;SNOMED-CT:44054006'`` → codings, prefixes mapped to system URIs."""
    known = dict(systems or {})

    def split(text: str) -> list[dict] | None:
        codings = []
        for item in str(text).split(separator):
            prefix, found, code = item.strip().partition(system_separator)
            if not found:
                prefix, code = "", prefix
            code = code.strip()
            if not code:
                continue
            coding = {"system": known[prefix], "code": code} if prefix in known else {"code": code}
            codings.append(coding)
        return codings or None

    return split


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
