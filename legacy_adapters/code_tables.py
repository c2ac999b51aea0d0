"""Legacy code tables, read through the read-only engine: one home for both uses.

**Lookups** (:class:`CodeTable`; ``code_tables:`` in a mapping, ``lookup:`` in values and
searches). Legacy rows hold a key (``measurement_concept_id``, ``test_cd``); the code table
knows, per key, the code, its display and its code system, which may differ row by row
(``vocabulary_id``: LOINC, SNOMED, ICD10CM…, where one code can exist in several)::

    code_tables:
      concept:
        table: concept
        key: concept_id
        code: concept_code
        display: concept_name
        system: {column: vocabulary_id, map: {LOINC: http://loinc.org, SNOMED: http://snomed.info/sct}}
        absent: [0]                        # "no matching concept": no coding, never matched

Nothing of a table is kept in memory. Output joins the table in the page's one statement (an
outer join on its key). A search ``system|code`` asks the table which keys carry that code in
that system, with one indexed query whose answer is cached for a while (bounded), and filters
the legacy rows' indexed key column by them: ``measurement_concept_id IN (3004410)``, which the
database can walk in index order. A code held by very many keys, or a system alone, becomes a
subquery instead (``… IN (SELECT concept_id FROM concept WHERE …)``).

**Local code systems** (:class:`LegacyCodeTables`, served as CodeSystem, ValueSet and
ConceptMap), the code tables declared in the mapping's ``terminology:`` section::

    code_tables:
      demo-lab-tests:                      # CodeSystem and ValueSet id
        title: Demo laboratory test codes
        system: urn:fhir-facade:demo:lab-test
        table: lab_test_cd
        code: test_cd
        display: test_desc
        target: {system: http://loinc.org, code: loinc_cd}   # optional: the table is also a crosswalk

Published tables are read with one ``SELECT`` of their code columns and kept for
``refresh_seconds``: publish only tables of a size that fits in memory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.sql.elements import ColumnElement

from legacy_adapters.engines import legacy_errors
from legacy_adapters.mapping.columns import exact_in
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.filters import row_filter
from legacy_adapters.mapping.sqlexpr import FALSE, all_of, present
from terminology.model import Crosswalk, CrosswalkRow

INLINE_KEYS = 100  # a code held by more keys than this is matched by a subquery


@dataclass(frozen=True)
class CodeTableSpec:
    name: str
    title: str
    system: str | None  # one system for the whole table, or None when each row names its own
    table: str
    code: str
    display: str | None = None
    target_system: str | None = None
    target_code: str | None = None
    key: str = ""  # the column legacy rows refer to (default: code)
    system_column: str | None = None  # the column naming each row's vocabulary
    system_map: dict[str, str] = field(default_factory=dict)  # vocabulary value -> system URI
    system_otherwise: str | None = None
    absent: tuple = ()  # keys meaning "no code"
    where: tuple = ()  # filters (format of ``where:``) on the table's own columns

    @classmethod
    def parse(cls, name: str, spec: dict, published: bool = True) -> CodeTableSpec:
        missing = [key for key in ("table", "code") if not spec.get(key)]
        if published and not isinstance(spec.get("system"), str):
            missing.insert(0, "system (one URI: a published code table is one code system)")
        if missing:
            raise ValueError(f"code table {name!r} needs {', '.join(missing)}")
        target = spec.get("target") or {}
        if target and not (target.get("system") and target.get("code")):
            raise ValueError(f"code table {name!r}: target needs system and code (a column)")
        system = spec.get("system")
        by_row = system if isinstance(system, dict) else {}
        if by_row and not (by_row.get("column") and isinstance(by_row.get("map"), dict)):
            raise ValueError(f"code table {name!r}: a system per row needs column and map (vocabulary value → URI)")
        return cls(
            str(name),
            str(spec.get("title", name)),
            system if isinstance(system, str) else None,
            spec["table"],
            spec["code"],
            spec.get("display"),
            target.get("system"),
            target.get("code"),
            key=spec.get("key") or spec["code"],
            system_column=by_row.get("column"),
            system_map={str(k): str(v) for k, v in (by_row.get("map") or {}).items()},
            system_otherwise=by_row.get("otherwise"),
            absent=tuple(spec.get("absent") or ()),
            where=tuple(spec.get("where") or ()),
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
        return Crosswalk.build(name, spec.title, spec.system or "", version, f"urn:fhir-facade:conceptmap:{name}", rows)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class CodeTable:
    """A code table bound to its legacy table (see the module docstring): joins for output,
    key predicates for search. Built by the binder, one per table named in the mapping."""

    def __init__(self, spec: CodeTableSpec, table: sa.Table, engine: sa.Engine, refresh_seconds: float = 300.0):
        self.spec = spec
        self.table = table
        self.engine = engine
        for role, name in (("key", spec.key), ("code", spec.code), ("display", spec.display), ("system column", spec.system_column)):
            if name and name not in table.c:
                raise MappingError(f"code table {spec.name!r}: {role} column {name!r} not found in table {spec.table!r}")
        self.refresh_seconds = refresh_seconds
        self._keys: TTLCache = TTLCache(maxsize=4096, ttl=refresh_seconds)
        self._lock = threading.Lock()

    # -- output ---------------------------------------------------------------------------------
    def join(self, alias: str, key_column: ColumnElement) -> tuple[sa.FromClause, ColumnElement]:
        """The table under ``alias`` and the condition joining it to legacy rows holding ``key_column``."""
        joined = self.table.alias(alias)
        return joined, sa.and_(joined.c[self.spec.key] == key_column, *self._conditions(joined))

    def coding(self, code: Any, system_value: Any, display: Any) -> dict | None:
        """The Coding of a joined row, or None when the row (or its code) is missing."""
        code = _text(code)
        if code is None:
            return None
        coding: dict = {}
        system = self.system_of(system_value)
        if system:
            coding["system"] = system
        coding["code"] = code
        display = _text(display)
        if display:
            coding["display"] = display
        return coding

    def system_of(self, system_value: Any) -> str | None:
        if self.spec.system is not None:
            return self.spec.system
        return self.spec.system_map.get(_text(system_value) or "", self.spec.system_otherwise)

    # -- search ---------------------------------------------------------------------------------
    def match(self, column: ColumnElement, system: str | None, code: str | None) -> ColumnElement:
        """Rows whose ``column`` holds a key of ``system|code`` (FHIR token semantics: None is
        'any system' / 'any code', '' is 'no system'). Never NULL, so ``:not`` keeps rows
        without a code."""
        vocabulary = self._vocabulary(system)
        if vocabulary is FALSE:
            return FALSE
        if code is None:
            return all_of(present(column), column.in_(self._keys_where(vocabulary, present(self.table.c[self.spec.code]))))
        keys = self._keys_for(system, code, vocabulary)
        if keys is None:  # too many to list: the database resolves them
            condition = exact_in(self.table.c[self.spec.code], [code])
            return all_of(present(column), column.in_(self._keys_where(vocabulary, condition)))
        return all_of(present(column), exact_in(column, keys)) if keys else FALSE

    def present(self, column: ColumnElement) -> ColumnElement:
        return self.match(column, None, None)

    def _keys_for(self, system: str | None, code: str, vocabulary: ColumnElement | None) -> list | None:
        cache_key = (system, code)
        with self._lock:
            if cache_key in self._keys:
                return self._keys[cache_key]
        statement = self._keys_where(vocabulary, exact_in(self.table.c[self.spec.code], [code])).limit(INLINE_KEYS + 1)
        with legacy_errors(), self.engine.connect() as connection:
            keys = sorted({row[0] for row in connection.execute(statement)}, key=str)
        found = None if len(keys) > INLINE_KEYS else keys
        with self._lock:
            self._keys[cache_key] = found
        return found

    def _keys_where(self, vocabulary: ColumnElement | None, condition: ColumnElement) -> sa.Select:
        key = self.table.c[self.spec.key]
        conditions = [condition, key.isnot(None), *self._conditions(self.table)]
        if vocabulary is not None:
            conditions.append(vocabulary)
        return sa.select(key).where(*conditions)

    def _vocabulary(self, system: str | None) -> Any:
        """The condition on the table's rows for a searched system: None (any), FALSE (none)."""
        spec = self.spec
        if system is None:
            return None
        if spec.system is not None:
            return None if system == spec.system else FALSE
        column = self.table.c[spec.system_column]  # type: ignore[index]
        mapped = sorted(spec.system_map)
        values = [value for value, uri in spec.system_map.items() if uri == system]
        if system == (spec.system_otherwise or ""):  # rows of vocabularies the map does not name
            unmapped = sa.or_(column.is_(None), sa.not_(exact_in(column, mapped))) if mapped else sa.true()
            return sa.or_(unmapped, exact_in(column, values)) if values else unmapped
        return exact_in(column, values) if values else FALSE

    def _conditions(self, table: sa.FromClause) -> list[ColumnElement]:
        conditions = [row_filter(item, lambda ref: _column(table, ref)) for item in self.spec.where]
        if self.spec.absent:
            conditions.append(sa.not_(table.c[self.spec.key].in_(list(self.spec.absent))))
        return conditions


def _column(table: sa.FromClause, ref: str) -> ColumnElement:
    name = str(ref).rpartition(".")[2]
    if name not in table.c:
        raise MappingError(f"column {name!r} not found in code table {getattr(table, 'name', '?')!r}", getattr(ref, "mark", None))
    return table.c[name]


def inline_spec(name: str, lookup: dict, system: str | None) -> CodeTableSpec:
    """A token binding's inline ``lookup: {table, key, code}`` as a code table of one system."""
    return CodeTableSpec(name, name, system, lookup["table"], lookup["code"], key=lookup["key"])
