"""Local code systems the legacy keeps in its own code tables, read through the read-only engine.

Declared in the mapping's ``terminology:`` section::

    code_tables:
      demo-lab-tests:                      # CodeSystem and ValueSet id
        title: Demo laboratory test codes
        system: urn:fhir-facade:demo:lab-test
        table: lab_test_cd
        code: test_cd
        display: test_desc
        target: {system: http://loinc.org, code: loinc_cd}   # optional: the table is also a crosswalk

A table is one ``SELECT`` of its code columns (code tables are small), cached with a TTL
(cachetools) so an edit in the legacy system shows up within ``refresh_seconds`` without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sqlalchemy as sa
from cachetools import TTLCache

from legacy_adapters.engines import legacy_errors
from terminology.model import Crosswalk, CrosswalkRow


@dataclass(frozen=True)
class CodeTableSpec:
    name: str
    title: str
    system: str
    table: str
    code: str
    display: str | None = None
    target_system: str | None = None
    target_code: str | None = None

    @classmethod
    def parse(cls, name: str, spec: dict) -> CodeTableSpec:
        missing = [key for key in ("system", "table", "code") if not spec.get(key)]
        if missing:
            raise ValueError(f"code table {name!r} needs {', '.join(missing)}")
        target = spec.get("target") or {}
        if target and not (target.get("system") and target.get("code")):
            raise ValueError(f"code table {name!r}: target needs system and code (a column)")
        return cls(name, spec.get("title", name), spec["system"], spec["table"], spec["code"], spec.get("display"),
                   target.get("system"), target.get("code"))


@dataclass(frozen=True)
class Concept:
    code: str
    display: str | None
    target: str | None  # the standard code, for tables that are crosswalks too


class LegacyCodeTables:
    def __init__(self, engine: sa.Engine | None, specs: dict[str, CodeTableSpec], refresh_seconds: float = 300.0):
        self.engine = engine
        self.specs = specs
        self._cache: TTLCache = TTLCache(maxsize=max(1, len(specs)), ttl=refresh_seconds)
        self._lock = threading.Lock()

    def concepts(self, name: str) -> tuple[Concept, ...]:
        with self._lock:
            found = self._cache.get(name)
        if found is None:
            found = self._load(self.specs[name])
            with self._lock:
                self._cache[name] = found
        return found

    def _load(self, spec: CodeTableSpec) -> tuple[Concept, ...]:
        schema, _, table_name = spec.table.rpartition(".")
        names = [spec.code, spec.display, spec.target_code]
        table = sa.table(table_name, *(sa.column(n) for n in names if n), schema=schema or None)
        columns = [table.c[n] if n else sa.null() for n in names]
        statement = sa.select(*columns).where(table.c[spec.code].isnot(None)).order_by(table.c[spec.code])
        with legacy_errors(), self.engine.connect() as connection:  # type: ignore[union-attr]
            rows = connection.execute(statement).all()
        concepts = []
        for code, display, target in rows:
            code = str(code).strip()
            if code:
                concepts.append(Concept(code, _text(display), _text(target)))
        return tuple(concepts)

    def crosswalk(self, name: str, version: str) -> Crosswalk | None:
        """The table as a crosswalk (local code → its target column), for ConceptMap and $translate."""
        spec = self.specs[name]
        if not spec.target_system:
            return None
        rows = [
            CrosswalkRow(c.code, c.display, spec.target_system if c.target else None, c.target, None,
                         "equivalent" if c.target else "unmatched")
            for c in self.concepts(name)
        ]
        return Crosswalk.build(name, spec.title, spec.system, version, f"urn:fhir-facade:conceptmap:{name}", rows)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
