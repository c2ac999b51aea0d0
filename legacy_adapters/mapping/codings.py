"""Value transforms that make codings: code strings split into codings, local codes translated
through a crosswalk, legacy units given their UCUM code (see values.py for the expressions)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from legacy_adapters.mapping.errors import MappingError

UCUM = "http://unitsofmeasure.org"


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
    """A legacy unit string → its UCUM code; a Quantity dict → the same with UCUM system and code,
    a range's ``low`` and ``high`` likewise (and, with ``convert: true``, the value converted where the unit table gives a factor)."""
    if name not in terminology.current().units:
        _unknown(where, "unit table", name)

    def to_ucum(value: Any) -> Any:
        table = terminology.current().units.get(name)
        return with_ucum(value, table.units if table is not None else {})

    # Run for every Quantity and range of every resource built: plain copies and lookups, one
    # snapshot per value (a range's bounds share it).
    def with_ucum(value: Any, units: Mapping[str, Any]) -> Any:
        if not isinstance(value, dict):
            found = units.get(str(value))
            return found.ucum_code if found else None
        if "low" in value or "high" in value:  # a range: each bound is a Quantity
            bounds = dict(value)
            for bound in ("low", "high"):
                if bound in value:
                    bounds[bound] = with_ucum(value[bound], units)
            return bounds
        unit = value.get("unit")
        found = units.get(unit) if unit else None
        if found is None:
            return value  # an unknown unit keeps its text and gets no code, never a guessed one
        quantity = dict(value)
        quantity.pop("system", None)
        quantity.pop("code", None)
        if convert and found.convert_to and found.factor is not None and isinstance(quantity.get("value"), (int, float)):
            number = round(quantity["value"] * found.factor, 6)
            quantity.update(value=int(number) if number.is_integer() else number, unit=found.convert_to)
            quantity.update(system=UCUM, code=found.convert_to)
        else:
            quantity.update(system=UCUM, code=found.ucum_code)
        return quantity

    return to_ucum


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
