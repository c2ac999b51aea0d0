"""Binding a loaded mapping to a live database: tables, columns, compiled builders.

Done once per process (and again only if it failed because the database was
down). Every source of every resource type becomes one or more *branches*: a
plain source is one branch; a source with ``variants`` (one legacy row → several
resources, e.g. a wide vitals row) is one branch per variant. Searches are unions
of branches, so several sources → one type works the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from legacy_adapters.code_tables import CodeTable
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
from legacy_adapters.mapping.columns import convert, split_converter
from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.filters import row_filter
from legacy_adapters.mapping.loader import MappingSpec, ResourceSpec, expand_variant
from legacy_adapters.mapping.sqlexpr import as_text, present
from legacy_adapters.mapping.templates import compile_template
from legacy_adapters.mapping.values import COLLECTION_SEPARATOR, RowFn, compile_value


@dataclass(eq=False)  # compared and hashed by identity
class BoundSource:
    name: str
    from_clause: FromClause
    columns: list[ColumnElement]  # the select list; builders read rows by position in it


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


class _SourceContext:
    """Resolves ``alias.column`` references and hands out select-list slots."""

    def __init__(
        self,
        tables: dict[str, FromClause],
        base: str,
        mapping: MappingSpec,
        formats: dict,
        byte_ordered_text: bool = False,
        connection: sa.Connection | None = None,
        metadata: sa.MetaData | None = None,
        code_tables: dict | None = None,
    ):
        self.byte_ordered_text = byte_ordered_text
        self.terminology = getattr(mapping, "terminology", None)  # crosswalks, for value expressions and tokens
        self.connection = connection
        self.metadata = metadata
        self.code_tables = code_tables if code_tables is not None else {}
        self.tables = tables
        self.base = base
        self.mapping = mapping
        self.formats = formats
        self.columns: list[ColumnElement] = []
        self._slots: dict[str, int] = {}
        self.collections: dict[str, Collection] = {}

    def resolve(self, ref: str) -> ColumnElement:
        ref, converter = split_converter(ref)  # "p.uuid:uuid": see columns.py
        alias, _, name = ref.rpartition(".")
        if alias in self.collections:  # a value of each belonging row, as one text column
            collection = self.collections[alias]
            return collection.aggregate(_column(collection.table, name, ref))
        table = self.tables.get(alias or self.base)
        if table is None:
            raise MappingError(f"unknown table alias {alias!r} in {ref!r}")
        if name not in table.c:
            raise MappingError(f"column {name!r} not found in table {getattr(table, 'name', alias)!r} ({ref!r})")
        try:
            return convert(table.c[name], converter)
        except ValueError as exc:
            raise MappingError(f"{exc} in {ref!r}") from None

    def collection_column(self, ref: str) -> tuple[Collection, ColumnElement] | None:
        alias, _, name = ref.rpartition(".")
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

    def code_table(self, spec: dict, key_column: ColumnElement) -> CodeTable:
        """``lookup: {table: lab_test_cd, key: test_cd, code: loinc_cd}``: one shared, cached table."""
        try:
            ident = (spec["table"], spec["key"], spec["code"])
        except (KeyError, TypeError):
            raise MappingError("lookup needs table, key and code") from None
        if ident not in self.code_tables:
            table = _table(self.metadata, spec["table"], self.connection)
            for name in ident[1:]:
                if name not in table.c:
                    raise MappingError(f"column {name!r} not found in code table {spec['table']!r}")
            self.code_tables[ident] = CodeTable(self.connection.engine, table, table.c[spec["key"]], table.c[spec["code"]])
        return self.code_tables[ident]

    def hook(self, name: str) -> Any:
        function = getattr(self.mapping.hooks, name, None) if self.mapping.hooks else None
        if not callable(function):
            raise MappingError(f"hook {name!r} is not defined in the mapping's hooks module")
        return function

    def date_format(self, fmt: str) -> LegacyDateFormat:
        if fmt not in self.formats:
            try:
                self.formats[fmt] = LegacyDateFormat(fmt, self.mapping.timezone)
            except ValueError as exc:
                raise MappingError(str(exc)) from None
        return self.formats[fmt]


def _column(table: FromClause, name: str, ref: str) -> ColumnElement:
    if name not in table.c:
        raise MappingError(f"column {name!r} not found in table {getattr(table, 'name', '?')!r} ({ref!r})")
    return table.c[name]


def bind_mapping(mapping: MappingSpec, connection: sa.Connection) -> dict[str, BoundResource]:
    """Reflect the tables the mapping names and compile every resource type."""
    metadata = sa.MetaData()
    formats: dict[str, LegacyDateFormat] = {}
    code_tables: dict[tuple, CodeTable] = {}
    return {
        type_name: _bind_resource(spec, mapping, metadata, connection, formats, code_tables)
        for type_name, spec in mapping.resources.items()
    }


def _table(metadata: sa.MetaData, name: str, connection: sa.Connection) -> sa.Table:
    schema, _, table_name = name.rpartition(".")
    key = name if schema else table_name
    if key in metadata.tables:
        return metadata.tables[key]
    try:
        return sa.Table(
            table_name,
            metadata,
            schema=schema or None,
            autoload_with=connection,
            listeners=[("column_reflect", _plain_numbers)],
        )
    except sa.exc.NoSuchTableError:
        raise MappingError(f"table {name!r} does not exist in the legacy database") from None


def _plain_numbers(_inspector: Any, _table: Any, column_info: dict) -> None:
    """Read NUMERIC columns as floats: FHIR JSON numbers, and no Decimal round trip per value."""
    if isinstance(column_info["type"], sa.Numeric) and not isinstance(column_info["type"], sa.Float):
        column_info["type"] = sa.Numeric(asdecimal=False)


def _bind_resource(
    spec: ResourceSpec, mapping: MappingSpec, metadata: sa.MetaData, connection: sa.Connection, formats: dict, code_tables: dict
) -> BoundResource:
    sources: list[BoundSource] = []
    branches: list[Branch] = []
    for source_spec in spec.sources:
        label = f"{spec.type} source {source_spec.get('name', source_spec['table'])!r}"
        try:
            tables, base, from_clause = _from_clause(source_spec, metadata, connection)
            ctx = _SourceContext(
                tables,
                base,
                mapping,
                formats,
                byte_ordered_text=connection.dialect.name == "sqlite",
                connection=connection,
                metadata=metadata,
                code_tables=code_tables,
            )
            ctx.collections = _collections(source_spec, tables, base, metadata, connection)
            bound = BoundSource(source_spec.get("name", source_spec["table"]), from_clause, ctx.columns)
            for variant in source_spec.get("variants") or [None]:
                branches.append(_bind_branch(len(branches), spec, source_spec, variant, bound, ctx))
        except MappingError as exc:
            raise MappingError(f"{label}: {exc}") from None
        sources.append(bound)
    return BoundResource(spec, sources, branches)


def _from_clause(source: dict, metadata: sa.MetaData, connection: sa.Connection) -> tuple[dict[str, FromClause], str, FromClause]:
    base_alias = source.get("alias") or source["table"].rpartition(".")[2]
    base = _table(metadata, source["table"], connection).alias(base_alias)
    tables: dict[str, FromClause] = {base_alias: base}
    joined: FromClause = base
    for join in source.get("joins") or []:
        alias = join.get("alias") or join["table"].rpartition(".")[2]
        table = _table(metadata, join["table"], connection).alias(alias)
        tables[alias] = table
        ctx = _SourceContext(tables, base_alias, None, {})  # type: ignore[arg-type]
        on = [ctx.resolve(left) == ctx.resolve(right) for left, right in (join.get("match") or {}).items()]
        if not on:
            raise MappingError(f"join to {join['table']!r} needs 'match': {{left.column: right.column}} pairs")
        joined = joined.join(table, sa.and_(*on), isouter=bool(join.get("outer", False)))
    return tables, base_alias, joined


def _collections(
    source: dict, tables: dict[str, FromClause], base: str, metadata: sa.MetaData, connection: sa.Connection
) -> dict[str, Collection]:
    """``collections: {results: {table: lab_result, match: {results.ord_no: o.ord_no}, where: [...]}}``."""
    collections = {}
    for name, spec in (source.get("collections") or {}).items():
        if name in tables:
            raise MappingError(f"collection {name!r} has the name of a table alias")
        table = _table(metadata, spec["table"], connection).alias(name)
        ctx = _SourceContext({**tables, name: table}, base, None, {})  # type: ignore[arg-type]
        on = [ctx.resolve(left) == ctx.resolve(right) for left, right in (spec.get("match") or {}).items()]
        if not on:
            raise MappingError(f"collection {name!r} needs 'match': {{{name}.column: alias.column}} pairs")
        where = [row_filter(item, ctx.resolve) for item in spec.get("where") or []]
        collections[name] = Collection(table, sa.and_(*on, *where))
    return collections


def _bind_branch(index: int, spec: ResourceSpec, source: dict, variant: dict | None, bound: BoundSource, ctx: _SourceContext) -> Branch:
    variant_name = None
    where_label = "resource"
    if variant is not None:
        variant_name = variant["name"]
        source = expand_variant(source, variant)
        where_label = f"variant {variant_name!r}"

    id_template = IdTemplate(source["id"], ctx.resolve)
    where = [row_filter(item, ctx.resolve) for item in source.get("where") or []]
    if id_template.converted:
        where.append(id_template.has_value())
    where += [present(ctx.resolve(ref)) for ref in source.get("require") or []]

    last_updated = None
    bindings: dict[str, Binding] = {"_id": IdBinding(id_template)}
    if "last_updated" in source:
        lu = dict(source["last_updated"], **{"as": "instant"})
        last_updated = compile_value(lu, ctx, "last_updated")
        bindings["_lastUpdated"] = DateBinding.from_spec(lu, ctx.resolve, ctx.date_format)
    for name, binding_spec in (source.get("search") or {}).items():
        bindings[name] = _binding(spec.params[name].type, binding_spec, ctx)

    return Branch(
        index=index,
        source=bound,
        variant=variant_name,
        where=where,
        id=id_template,
        build=compile_template(source["resource"], ctx, where_label),
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
