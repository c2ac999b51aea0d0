"""Legacy code tables, read through the read-only engine: one home for both uses.

**Lookups for search and output** (:class:`CodeTable`, a token binding's ``lookup:``).
``Observation?code=http://loinc.org|2345-7`` where labs store 'GLU' and the code table
``lab_test_cd`` says GLU ↔ 2345-7: rather than joining the code table and filtering on its
LOINC column (which leaves the database sorting every glucose row), the façade looks up
{'GLU'} here and sends ``test_cd IN ('GLU')``, which walks the (test_cd, date) index in order.

**Local code systems** (:class:`LegacyCodeTables`, served as CodeSystem, ValueSet and
ConceptMap), declared in the mapping's ``terminology:`` section::

    code_tables:
      demo-lab-tests:                      # CodeSystem and ValueSet id
        title: Demo laboratory test codes
        system: urn:fhir-facade:demo:lab-test
        table: lab_test_cd
        code: test_cd
        display: test_desc
        target: {system: http://loinc.org, code: loinc_cd}   # optional: the table is also a crosswalk

Both read a table with one ``SELECT`` of its code columns and keep it for ``refresh_seconds``,
so an edit in the legacy system shows up without a restart.
"""

from __future__ import annotations

import threading
import time
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
        return cls(
            name,
            spec.get("title", name),
            spec["system"],
            spec["table"],
            spec["code"],
            spec.get("display"),
            target.get("system"),
            target.get("code"),
        )


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
            CrosswalkRow(
                c.code, c.display, spec.target_system if c.target else None, c.target, None, "equivalent" if c.target else "unmatched"
            )
            for c in self.concepts(name)
        ]
        return Crosswalk.build(name, spec.title, spec.system, version, f"urn:fhir-facade:conceptmap:{name}", rows)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class CodeTable:
    def __init__(
        self, engine: sa.Engine, table: sa.FromClause, key: sa.ColumnElement, code: sa.ColumnElement, refresh_seconds: float = 300.0
    ):
        self.engine = engine
        self.statement = sa.select(code, key).select_from(table).where(code.isnot(None), key.isnot(None))
        self.refresh_seconds = refresh_seconds
        self._keys_by_code: dict[str, list] = {}
        self._all_keys: list = []
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _current(self) -> None:
        if time.monotonic() - self._loaded_at < self.refresh_seconds:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < self.refresh_seconds:
                return
            keys_by_code: dict[str, list] = {}
            with legacy_errors(), self.engine.connect() as connection:
                for code, key in connection.execute(self.statement):
                    code = str(code).strip()
                    if code:
                        keys_by_code.setdefault(code, []).append(key)
            self._keys_by_code = keys_by_code
            self._all_keys = sorted({key for keys in keys_by_code.values() for key in keys})
            self._loaded_at = time.monotonic()

    def keys_for(self, code: str) -> list:
        """Local keys whose code-table row carries ``code``."""
        self._current()
        return self._keys_by_code.get(code, [])

    def all_keys(self) -> list:
        """Local keys that have any code at all."""
        self._current()
        return self._all_keys
