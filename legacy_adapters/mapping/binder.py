"""Binding a loaded mapping to a live database: tables, columns, compiled builders.

Done once per process (and again only if it failed because the database was
down). Every source of every resource type becomes one or more *branches*: a
plain source is one branch; a source with ``variants`` (one legacy row → several
resources, e.g. a wide vitals row) is one branch per variant. Searches are unions
of branches, so several sources → one type works the same way.

Every problem is collected, each at its place in the mapping file (a missing table, a
misspelled column, a date column read the wrong way, integer ids that overlap), and raised
together: server start-up and ``mapping check`` report the same list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from legacy_adapters.code_tables import CodeTable, inline_spec
from legacy_adapters.mapping.bindings import (
    Binding,
    CollectionReferenceBinding,
    DateBinding,
    IdBinding,
    IdTemplate,
    ReferenceBinding,
    StringBinding,
    TokenBinding,
)
from legacy_adapters.mapping.columns import convert, lenient_sqlite_type, split_converter
from legacy_adapters.mapping.datetypes import codec_for
from legacy_adapters.mapping.errors import MappingError, Problems
from legacy_adapters.mapping.filters import row_filter
from legacy_adapters.mapping.idspaces import check_id_spaces
from legacy_adapters.mapping.loader import MappingSpec, ResourceSpec, expand_variant
from legacy_adapters.mapping.sqlexpr import as_text, present
from legacy_adapters.mapping.templates import compile_template
from legacy_adapters.mapping.values import COLLECTION_SEPARATOR, RowFn, compile_value
from legacy_adapters.mapping.yamlpos import mark_of


@dataclass(eq=False)  # compared and hashed by identity
class BoundSource:
    name: str
    from_clause: FromClause
    columns: list[ColumnElement]  # the select list; builders read rows by position in it
    code_tables: list[CodeTable] = field(default_factory=list)  # joined for output (lookup:)
    key: ColumnElement | None = None  # the source table's one-column primary key, if it has one: its storage order


@dataclass(eq=False)
class Collection:
    """Rows of another table that belong to one source row (``collections:`` in a source),
    e.g. the results of a lab order. Read as one text column per row (values joined by
    :data:`COLLECTION_SEPARATOR`, one correlated subquery) and searched with EXISTS."""

    table: FromClause
    condition: ColumnElement  # the match and where conditions, correlated to the source row

    def aggregate(self, column: ColumnElement) -> ColumnElement:
        return (
            sa.select(sa.func.aggregate_strings(as_text(column), COLLECTION_SEPARATOR))
            .select_from(self.table)
            .where(self.condition)
            .scalar_subquery()
        )

    def exists(self, condition: ColumnElement) -> ColumnElement:
        return sa.exists().select_from(self.table).where(self.condition, condition)


@dataclass
class Branch:
    index: int
    source: BoundSource
    variant: str | None
    where: list[ColumnElement]
    id: IdTemplate
    build: RowFn
    last_updated: RowFn | None
    bindings: dict[str, Binding] = field(default_factory=dict)


@dataclass
class BoundResource:
    spec: ResourceSpec
    sources: list[BoundSource]
    branches: list[Branch]
    select_lists: dict = field(default_factory=dict)  # compiler's cache, per combination of sources


class _Binder:
    """What a whole mapping shares while it is bound: reflected tables, date codecs, code tables, problems."""

    def __init__(self, mapping: MappingSpec, connection: sa.Connection):
        self.mapping = mapping
        self.connection = connection
        self.metadata = sa.MetaData()
        self.formats: dict[Any, Any] = {}
        self.code_tables: dict[Any, CodeTable] = {}
        self.problems = Problems()
        self.label = ""  # the source being bound, for messages

    def table(self, name: str) -> sa.Table:
        schema, _, table_name = str(name).rpartition(".")
        key = name if schema else table_name
        if key in self.metadata.tables:
            return self.metadata.tables[key]
        try:
            return sa.Table(
                table_name,
                self.metadata,
                schema=schema or None,
                autoload_with=self.connection,
                listeners=[("column_reflect", _plain_numbers)],
            )
        except sa.exc.NoSuchTableError:
            raise MappingError(f"table {str(name)!r} does not exist in the legacy database", mark_of(name)) from None

    def code_table(self, name: str | dict, system: str | None = None) -> CodeTable:
        """A named code table of the mapping, or a token binding's inline ``{table, key, code}``."""
        if isinstance(name, dict):
            try:
                ident: Any = (name["table"], name["key"], name["code"], system)
            except (KeyError, TypeError):
                raise MappingError("lookup needs table, key and code", mark_of(name)) from None
            spec = inline_spec(f"{name['table']}.{name['code']}", name, system)
        else:
            ident, found = name, self.mapping.code_tables.get(str(name))
            if found is None:
                known = ", ".join(sorted(self.mapping.code_tables)) or "none declared"
                raise MappingError(f"unknown code table {str(name)!r} (code_tables: {known})", mark_of(name))
            spec = found
        if ident not in self.code_tables:
            self.code_tables[ident] = CodeTable(spec, self.table(spec.table), self.connection.engine)
        return self.code_tables[ident]

    def date_codec(self, fmt: Any, column: ColumnElement, ref: Any) -> Any:
        """How ``column`` holds dates: a text format, ``epoch``/``epoch_ms``, or (no format) its type."""
        return codec_for(fmt, column, ref, self.mapping.timezone, self.formats)


class _SourceContext:
    """Resolves ``alias.column`` references and hands out select-list slots for one source."""

    def __init__(self, binder: _Binder, tables: dict[str, FromClause], base: str, broken: set[str] | None = None):
        self.binder = binder
        self.broken = broken or set()  # aliases of joined tables that do not exist (already reported)
        self.mapping = binder.mapping
        self.terminology = getattr(binder.mapping, "terminology", None)  # crosswalks, for values and tokens
        self.byte_ordered_text = binder.connection.dialect.name == "sqlite"
        self.tables = tables
        self.base = base
        self.columns: list[ColumnElement] = []
        self._slots: dict[str, int] = {}
        self.collections: dict[str, Collection] = {}
        self.lookups: dict[tuple, tuple] = {}
        self.joins: list[tuple[FromClause, ColumnElement]] = []  # code tables joined for output

    def resolve(self, ref: str) -> ColumnElement:
        column, converter = split_converter(str(ref))  # "p.uuid:uuid": see columns.py
        alias, _, name = column.rpartition(".")
        if alias in self.collections:  # a value of each belonging row, as one text column
            collection = self.collections[alias]
            return collection.aggregate(_column(collection.table, name, ref))
        table = self.tables.get(alias or self.base)
        if table is None and alias in self.broken:
            return sa.null()
        if table is None:
            known = ", ".join(a for a in self.tables if not a.startswith("_lookup")) or "none"
            raise MappingError(f"unknown table alias {alias!r} in {str(ref)!r} (aliases of this source: {known})", mark_of(ref))
        found = _column(table, name, ref)
        try:
            return convert(found, converter)
        except ValueError as exc:
            raise MappingError(f"{exc} in {str(ref)!r}", mark_of(ref)) from None

    def collection_column(self, ref: str) -> tuple[Collection, ColumnElement] | None:
        alias, _, name = str(ref).rpartition(".")
        if alias not in self.collections:
            return None
        collection = self.collections[alias]
        return collection, _column(collection.table, name, ref)

    def slot(self, ref: str) -> int:
        key = ref if "." in ref else f"{self.base}.{ref}"
        if key not in self._slots:
            self._slots[key] = len(self.columns)
            self.columns.append(self.resolve(ref))
        return self._slots[key]

    def code_table(self, spec: Any, _key_column: ColumnElement | None = None, system: str | None = None) -> CodeTable:
        return self.binder.code_table(spec, system)

    def lookup(self, name: str, ref: str) -> tuple[CodeTable, int, int | None, int | None]:
        """``{column: ref, lookup: name}`` in a resource: the code table joined on the column."""
        if (name, str(ref)) not in self.lookups:
            table = self.binder.code_table(name)
            alias = f"_lookup{len(self.lookups) + 1}"
            joined, on = table.join(alias, self.resolve(ref))
            self.tables[alias] = joined
            self.joins.append((joined, on))
            spec = table.spec
            parts = [spec.code, spec.system_column, spec.display]
            slots = [self.slot(f"{alias}.{part}") if part else None for part in parts]
            self.lookups[(name, str(ref))] = (table, *slots)
        return self.lookups[(name, str(ref))]

    def hook(self, name: str) -> Any:
        function = getattr(self.mapping.hooks, name, None) if self.mapping.hooks else None
        if not callable(function):
            raise MappingError(f"hook {str(name)!r} is not defined in the mapping's hooks module", mark_of(name))
        return function

    def date_format(self, fmt: Any, column: Any = None) -> Any:
        resolved = self.resolve(column) if isinstance(column, str) else column
        return self.binder.date_codec(fmt, resolved if resolved is not None else sa.null(), column)


def _column(table: FromClause, name: str, ref: Any) -> ColumnElement:
    if name not in table.c:
        from legacy_adapters.mapping.validate import suggest

        where = getattr(getattr(table, "element", table), "name", None) or getattr(table, "name", "?")
        raise MappingError(f"{str(ref)!r}: column {name!r} not found in {where!r}{suggest(name, table.c.keys())}", mark_of(ref))
    return table.c[name]


def bind_mapping(mapping: MappingSpec, connection: sa.Connection) -> dict[str, BoundResource]:
    """Reflect the tables the mapping names and compile every resource type; all problems at once."""
    binder = _Binder(mapping, connection)
    bound = {}
    for type_name, spec in mapping.resources.items():
        bound[type_name] = _bind_resource(spec, binder)
    if not binder.problems:
        check_id_spaces(bound, binder.problems)
    binder.problems.raise_any()
    return bound


def _plain_numbers(inspector: Any, _table: Any, column_info: dict) -> None:
    """Read NUMERIC columns as floats (FHIR JSON numbers, no Decimal round trip per value), and
    SQLite date columns as stored (see columns.SqliteDateColumn)."""
    if isinstance(column_info["type"], sa.Float):
        if column_info["type"].asdecimal:  # MySQL's DOUBLE reads as Decimal unless told
            column_info["type"] = sa.Float(asdecimal=False)
    elif isinstance(column_info["type"], sa.Numeric):
        column_info["type"] = sa.Numeric(asdecimal=False)
    elif getattr(getattr(inspector, "dialect", None), "name", "") == "sqlite":
        lenient = lenient_sqlite_type(column_info["type"])
        if lenient is not None:
            column_info["type"] = lenient


def _bind_resource(spec: ResourceSpec, binder: _Binder) -> BoundResource:
    sources: list[BoundSource] = []
    branches: list[Branch] = []
    for source_spec in spec.sources:
        label = binder.label = f"{spec.type} source {source_spec.get('name', source_spec['table'])!r}"
        before = len(binder.problems.found)
        try:
            tables, base, from_clause, broken = _from_clause(source_spec, binder)
            ctx = _SourceContext(binder, tables, base, broken)
            ctx.collections = _collections(source_spec, tables, base, binder)
            primary = list(tables[base].primary_key)
            key = primary[0] if len(primary) == 1 else None
            bound = BoundSource(str(source_spec.get("name", source_spec["table"])), from_clause, ctx.columns, key=key)
            for variant in source_spec.get("variants") or [None]:
                try:
                    branches.append(_bind_branch(len(branches), spec, source_spec, variant, bound, ctx))
                except MappingError as exc:
                    binder.problems.extend(exc.within(label + (f" variant {variant['name']!r}" if variant else "")))
            for joined, on in ctx.joins:  # code tables joined for output
                bound.from_clause = bound.from_clause.outerjoin(joined, on)
            bound.code_tables = [found[0] for found in ctx.lookups.values()]
        except MappingError as exc:
            binder.problems.extend(exc.within(label, mark_of(source_spec)))
            continue
        except Exception:  # a follow-on failure of a problem already found; else a real bug
            if len(binder.problems.found) == before:
                raise
            continue
        sources.append(bound)
    return BoundResource(spec, sources, branches)


def _from_clause(source: dict, binder: _Binder) -> tuple[dict[str, FromClause], str, FromClause, set[str]]:
    """The source's tables and joins. A joined table that does not exist is reported and left
    out, its alias 'broken': columns read through it are not reported again."""
    base_alias = source.get("alias") or str(source["table"]).rpartition(".")[2]
    base = binder.table(source["table"]).alias(base_alias)
    tables: dict[str, FromClause] = {base_alias: base}
    broken: set[str] = set()
    joined: FromClause = base
    for join in source.get("joins") or []:
        alias = join.get("alias") or str(join["table"]).rpartition(".")[2]
        try:
            table = binder.table(join["table"]).alias(alias)
            tables[alias] = table
            ctx = _SourceContext(binder, tables, base_alias, broken)
            on = [ctx.resolve(left) == ctx.resolve(right) for left, right in (join.get("match") or {}).items()]
            on += [row_filter(item, ctx.resolve) for item in join.get("where") or []]  # part of the join: outer keeps the row
            if not on:
                raise MappingError(f"join to {join['table']!r} needs 'match': {{left.column: right.column}} pairs", mark_of(join))
            joined = joined.join(table, sa.and_(*on), isouter=bool(join.get("outer", False)))
        except MappingError as exc:
            binder.problems.extend(exc.within(binder.label))
            broken.add(alias)
    return tables, base_alias, joined, broken


def _collections(source: dict, tables: dict[str, FromClause], base: str, binder: _Binder) -> dict[str, Collection]:
    """``collections: {results: {table: lab_result, match: {results.ord_no: o.ord_no}, where: [...]}}``."""
    collections = {}
    for name, spec in (source.get("collections") or {}).items():
        if name in tables:
            raise MappingError(f"collection {name!r} has the name of a table alias", mark_of(spec))
        table = binder.table(spec["table"]).alias(name)
        ctx = _SourceContext(binder, {**tables, name: table}, base)
        on = [ctx.resolve(left) == ctx.resolve(right) for left, right in (spec.get("match") or {}).items()]
        if not on:
            raise MappingError(f"collection {name!r} needs 'match': {{{name}.column: alias.column}} pairs", mark_of(spec))
        where = [row_filter(item, ctx.resolve) for item in spec.get("where") or []]
        collections[name] = Collection(table, sa.and_(*on, *where))
    return collections


def _bind_branch(index: int, spec: ResourceSpec, source: dict, variant: dict | None, bound: BoundSource, ctx: _SourceContext) -> Branch:
    variant_name = None
    where_label = "resource"
    if variant is not None:
        variant_name = str(variant["name"])
        source = expand_variant(source, variant)
        where_label = f"variant {variant_name!r}"
    problems = Problems()

    def attempt(build: Any, *args: Any) -> Any:
        try:
            return build(*args)
        except MappingError as exc:
            problems.extend(exc)
            return None

    id_template = attempt(IdTemplate, source["id"], ctx.resolve)
    where = [attempt(row_filter, item, ctx.resolve) for item in source.get("where") or []]
    if id_template is not None and id_template.converted:
        where.append(id_template.has_value())
    where += [attempt(lambda ref: present(ctx.resolve(ref)), ref) for ref in source.get("require") or []]

    last_updated = None
    bindings: dict[str, Binding] = {}
    if id_template is not None:
        bindings["_id"] = IdBinding(id_template)
    if "last_updated" in source:
        lu = dict(source["last_updated"], **{"as": "instant"})
        last_updated = attempt(compile_value, lu, ctx, "last_updated")
        found = attempt(DateBinding.from_spec, lu, ctx.resolve, ctx.date_format)
        if found is not None:
            bindings["_lastUpdated"] = found
    for name, binding_spec in (source.get("search") or {}).items():
        found = attempt(_binding, spec.params[name].type, binding_spec, ctx)
        if found is not None:
            bindings[name] = found
    build = attempt(compile_template, source["resource"], ctx, where_label, spec.type)
    problems.raise_any()
    return Branch(
        index=index,
        source=bound,
        variant=variant_name,
        where=where,
        id=id_template,
        build=build,
        last_updated=last_updated,
        bindings=bindings,
    )


def _binding(param_type: str, spec: dict, ctx: _SourceContext) -> Binding:
    if param_type == "token":
        return TokenBinding.from_spec(spec, ctx.resolve, ctx.code_table, ctx.terminology)
    if param_type == "string":
        return StringBinding.from_spec(spec, ctx.resolve, byte_ordered=ctx.byte_ordered_text)
    if param_type == "date":
        return DateBinding.from_spec(spec, ctx.resolve, ctx.date_format)
    held = ctx.collection_column(spec["column"]) if "column" in spec else None
    if held is not None:
        collection, column = held
        return CollectionReferenceBinding(
            IdTemplate("{x}", lambda _ref: column), collection.exists, spec.get("type"), listed=collection.aggregate(column)
        )
    return ReferenceBinding.from_spec(spec, ctx.resolve)
