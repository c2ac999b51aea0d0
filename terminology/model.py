"""The immutable terminology snapshot and the lookups built from it once per load.

A Snapshot is never changed after it is built; a reload builds a new one and swaps it
in whole (see :mod:`registry`), so a request never sees half of an old crosswalk and
half of a new one.

Equivalence follows R4 ConceptMap: a local code is *translated* (shown as a standard
coding on output, found by a standard-code search) only when the target is ``equivalent``,
``equal``, ``wider`` or ``subsumes`` — i.e. data coded locally is truthfully also coded
with the target. ``narrower``, ``inexact``, ``relatedto``… appear in ConceptMap and
``$translate`` answers but are never stamped onto data. ``unmatched`` rows say a code is
known and deliberately unmapped (they still give the local display).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

EQUIVALENCES = ("relatedto", "equivalent", "equal", "wider", "subsumes", "narrower", "specializes", "inexact", "unmatched", "disjoint")
APPLIED = frozenset({"equivalent", "equal", "wider", "subsumes"})


@dataclass(frozen=True)
class CrosswalkRow:
    """One crosswalk row: a local code and (unless unmatched) the standard code it maps to."""

    local_code: str
    local_display: str | None
    target_system: str | None
    target_code: str | None
    target_display: str | None
    equivalence: str


@dataclass(frozen=True)
class Crosswalk:
    name: str
    title: str
    local_system: str
    version: str
    url: str
    rows: tuple[CrosswalkRow, ...]
    # Precomputed per local code: the codings an element carries (standard ones first, then
    # the local coding) and, per (standard system, code), the local codes that map to it.
    codings: Mapping[str, tuple[dict, ...]] = field(default_factory=dict)
    local_codes: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    mapped_in: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # system -> local codes mapped to it
    displays: Mapping[str, str] = field(default_factory=dict)  # local code -> local display

    @property
    def target_systems(self) -> tuple[str, ...]:
        return tuple(sorted({r.target_system for r in self.rows if r.target_system}))

    @classmethod
    def build(cls, name: str, title: str, local_system: str, version: str, url: str, rows: list[CrosswalkRow]) -> Crosswalk:
        displays: dict[str, str] = {}
        standard: dict[str, list[dict]] = {}
        reverse: dict[tuple[str, str], list[str]] = {}
        by_system: dict[str, set[str]] = {}
        for row in rows:
            if row.local_display and row.local_code not in displays:
                displays[row.local_code] = row.local_display
            standard.setdefault(row.local_code, [])
            if row.equivalence in APPLIED and row.target_system and row.target_code:
                coding = {"system": row.target_system, "code": row.target_code}
                if row.target_display:
                    coding["display"] = row.target_display
                if coding not in standard[row.local_code]:
                    standard[row.local_code].append(coding)
                keys = reverse.setdefault((row.target_system, row.target_code), [])
                if row.local_code not in keys:
                    keys.append(row.local_code)
                by_system.setdefault(row.target_system, set()).add(row.local_code)
        codings = {}
        for code, found in standard.items():
            local = {"system": local_system, "code": code}
            if code in displays:
                local["display"] = displays[code]
            codings[code] = (*found, local)
        return cls(
            name,
            title,
            local_system,
            version,
            url,
            tuple(rows),
            codings=MappingProxyType(codings),
            local_codes=MappingProxyType({k: tuple(sorted(v)) for k, v in reverse.items()}),
            mapped_in=MappingProxyType({k: tuple(sorted(v)) for k, v in by_system.items()}),
            displays=MappingProxyType(displays),
        )

    def codings_for(self, local_code: str) -> list[dict]:
        """Standard codings then the local one; an unknown code keeps just its local coding."""
        found = self.codings.get(local_code)
        if found is None:
            return [{"system": self.local_system, "code": local_code}]
        return [dict(c) for c in found]  # copies: a built resource is the caller's to change


@dataclass(frozen=True)
class UnitMapping:
    legacy_unit: str
    ucum_code: str
    ucum_display: str
    convert_to: str | None
    factor: float | None


@dataclass(frozen=True)
class UnitMap:
    name: str
    title: str
    units: Mapping[str, UnitMapping]


@dataclass(frozen=True)
class Snapshot:
    version: str
    publisher: str
    crosswalks: Mapping[str, Crosswalk]
    aliases: Mapping[str, Mapping[str, str]]
    units: Mapping[str, UnitMap]
    generation: int = 0  # bumped by every reload; plans built from an older one are stale

    def crosswalk(self, name: str) -> Crosswalk:
        return self.crosswalks[name]


EMPTY = Snapshot("", "", MappingProxyType({}), MappingProxyType({}), MappingProxyType({}))
