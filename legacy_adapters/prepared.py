"""A read or page statement compiled once for its engine and run as the driver's SQL.

A plan's statement never changes, only its bound values; but ``Connection.execute`` works out
its cache key, execution context and result rows again on every call: ~50 µs of Python on a
Patient read whose SQL takes 8 µs on SQLite. Here the compiled string, the values fixed at
compile time and the type conversions are kept, and each call runs through the connection's
own cursor execution, so the engine's statement listeners (metrics, the PostgreSQL watchdog)
and its error handling (a lost connection invalidated, driver errors wrapped as SQLAlchemy's,
which ``legacy_errors`` answers) apply as on any statement. Rows come back as tuples holding
what SQLAlchemy's rows would hold.

Searches differ in their values far more often than in their SQL: each patient's first
laboratory page is a new plan, but the same statement with another id. :class:`Shapes` keeps
one compiled statement per SQLAlchemy cache key (the key its own compiled cache uses: the SQL's
structure, not its values) and prepares a new plan's values against it, so such a plan costs
building its expression and its cache key, not compiling its SQL again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache


class Shape:
    """A statement compiled for an engine: what every statement with its cache key shares."""

    def __init__(self, statement: sa.Select | sa.CompoundSelect, dialect: sa.Dialect, key: Any = None):
        self.compiled: Any = statement.compile(dialect=dialect, cache_key=key)
        compiled = self.compiled
        self.dialect = dialect
        self.expands = bool(compiled.literal_execute_params or compiled.post_compile_params)
        self.binders: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)  # type: ignore[arg-type]
        self.order: Sequence[str] | None = compiled.positiontup if compiled.positional else None
        self.escaped = compiled.escaped_bind_names
        self.sequence = dialect.execute_sequence_format
        self.types = [column.type for column in compiled._result_columns]
        self.converters: list[tuple[int, Callable[[Any], Any]]] | None = None

    def prepare(self, key: Any = None) -> Prepared:
        """This shape with the values of the statement whose cache key is ``key`` (None: the
        statement it was compiled from)."""
        compiled = self.compiled
        extracted = key.bindparams if key is not None else None
        values = dict(compiled.construct_params(escape_names=False, _check=False, extracted_parameters=extracted))
        sql, binders, order = compiled.string, self.binders, self.order
        if self.expands:
            # Lists (IN) are expanded into the string once, as SQLAlchemy would on each call:
            # their values are part of the plan; the values left open (a cursor) are not lists.
            expanded = compiled._process_parameters_for_postcompile(values)
            sql, binders, values = expanded.statement, {**binders, **expanded.processors}, dict(expanded.parameters)
            order = expanded.positiontup if compiled.positional else None
        return Prepared(self, sql, binders, order, values)

    def result_converters(self, description: Sequence[Sequence[Any]]) -> list[tuple[int, Callable[[Any], Any]]]:
        """The columns whose driver values SQLAlchemy's types convert (a SQLite DATE read as a
        date, a binary uuid as text...), decided once from the first result's description."""
        converters = self.converters
        if converters is None:
            converters = []
            for index, (type_, column) in enumerate(zip(self.types, description, strict=False)):
                convert = type_._cached_result_processor(self.dialect, column[1])
                if convert is not None:
                    converters.append((index, convert))
            self.converters = converters
        return converters


class Shapes:
    """The shapes compiled for one engine, the most recently used kept."""

    def __init__(self, dialect: sa.Dialect, size: int = 256):
        self.dialect = dialect
        self._shapes: LRUCache = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def prepare(self, statement: sa.Select | sa.CompoundSelect) -> Prepared:
        key = statement._generate_cache_key()
        if key is None or key.params or any(bind.callable is not None for bind in key.bindparams):
            # A construct SQLAlchemy cannot key, or values its key does not carry as bound
            # parameters (given with .params(), or computed by a callable): compiled alone.
            return Prepared.compile(statement, self.dialect)
        with self._lock:
            shape = self._shapes.get(key.key)
        if shape is None:
            shape = Shape(statement, self.dialect, key)
            with self._lock:
                self._shapes[key.key] = shape
            return shape.prepare()
        return shape.prepare(key)

    def __len__(self) -> int:
        return len(self._shapes)


class Prepared:
    """One plan's statement: its driver SQL and the values fixed in it."""

    def __init__(self, shape: Shape, sql: str, binders: dict[str, Callable[[Any], Any]], order: Sequence[str] | None, values: dict):
        self.shape, self.sql, self._binders, self._order = shape, sql, binders, order
        self._fixed = {name: self._bound(name, value) for name, value in values.items()}

    @classmethod
    def compile(cls, statement: sa.Select | sa.CompoundSelect, dialect: sa.Dialect) -> Prepared:
        """A statement compiled for itself alone."""
        shape = Shape(statement, dialect)
        prepared = shape.prepare()
        shape.compiled = None  # shared by nobody: its expression tree is let go
        return prepared

    def rows(self, connection: sa.Connection, params: Mapping[str, object] | None = None) -> list[tuple]:
        """All rows of the statement with ``params`` bound (values the plan left open)."""
        shape = self.shape
        values = self._fixed
        if params:
            values = {**values, **{name: self._bound(name, value) for name, value in params.items()}}
        arguments: Any
        if self._order is not None:
            arguments = shape.sequence([values[name] for name in self._order])
        else:
            escaped = shape.escaped
            arguments = {escaped.get(name, name): v for name, v in values.items()} if escaped else values
        try:
            cursor = connection.connection.cursor()
        except Exception as exc:  # a connection already closed under us: SQLAlchemy's error, invalidated
            connection._handle_dbapi_exception(exc, self.sql, arguments, None, None)
            raise  # not reached
        try:
            connection._cursor_execute(cursor, self.sql, arguments)
            try:
                rows = cursor.fetchall()
            except Exception as exc:  # a failure while reading rows is the statement's failure
                connection._handle_dbapi_exception(exc, self.sql, arguments, cursor, None)
                raise  # not reached: the call above raises SQLAlchemy's form of the error
            converters = shape.converters
            if converters is None:
                converters = shape.result_converters(cursor.description)
        finally:
            with contextlib.suppress(Exception):  # a lost connection's cursor may not close; its error is already raised
                cursor.close()
        if converters:
            return [_converted(row, converters) for row in rows]
        return rows if isinstance(rows, list) else list(rows)  # pymysql answers a tuple of rows

    def _bound(self, name: str, value: object) -> object:
        binder = self._binders.get(name)
        return binder(value) if binder is not None else value


def _converted(row: Sequence[Any], converters: list[tuple[int, Callable[[Any], Any]]]) -> tuple:
    values = list(row)
    for index, convert in converters:
        values[index] = convert(values[index])
    return tuple(values)
