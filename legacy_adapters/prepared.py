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
laboratory page is a new plan, but the same statement with another id. :class:`Shapes` keeps,
per SQLAlchemy cache key (the key its own compiled cache uses: the SQL's structure, not its
values), the compiled SQL and which parameter takes which of a key's values, and gives a new
plan its own values in that SQL: such a plan costs building its expression and its cache key,
not compiling its SQL again. The compiled form itself is let go (with its expression tree, it
is tens to hundreds of KB). A statement whose lists (IN) expand into its SQL is compiled alone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from cachetools import LRUCache


class Shape:
    """What running a compiled statement needs (its SQL, parameter order and type conversions),
    without the compiled form and its expression tree (tens to hundreds of KB each)."""

    def __init__(self, compiled: Any, dialect: sa.Dialect):
        self.dialect = dialect
        self.sql: str = compiled.string
        self.binders: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)
        self.order: Sequence[str] | None = compiled.positiontup if compiled.positional else None
        self.escaped = compiled.escaped_bind_names
        self.sequence = dialect.execute_sequence_format
        self.types = [column.type for column in compiled._result_columns]
        self.converters: list[tuple[int, Callable[[Any], Any]]] | None = None

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


class _Position:
    """Stands in for one of a cache key's bound values while SQLAlchemy resolves a compiled
    statement's parameters: it tells which parameter takes which of a key's values."""

    __slots__ = ()

    @property
    def value(self) -> _Position:
        return self

    effective_value = value


class SharedShape(Shape):
    """A shape every statement with one SQLAlchemy cache key runs with: each parameter either takes
    the value at its position among a key's bound parameters, or keeps the compiled constant."""

    def __init__(self, compiled: Any, dialect: sa.Dialect, key: Any):
        super().__init__(compiled, dialect)
        positions = [_Position() for _ in key.bindparams]
        index = {id(position): i for i, position in enumerate(positions)}
        resolved = compiled.construct_params(escape_names=False, _check=False, extracted_parameters=positions)
        # A key's values (the first patient's id) are not kept, only the constants.
        self.slots = [(name, index[id(v)], None) if id(v) in index else (name, None, v) for name, v in resolved.items()]

    def prepare(self, key: Any) -> Prepared:
        """This shape with the values of the statement whose cache key is ``key``."""
        binds = key.bindparams
        values = {name: binds[i].value if i is not None else constant for name, i, constant in self.slots}
        return Prepared(self, self.sql, self.binders, self.order, values)


_EXPANDS = object()  # in Shapes: this key's statements expand lists into their SQL, each its own


class Shapes:
    """The shapes compiled for one engine, the most recently used kept."""

    def __init__(self, dialect: sa.Dialect, size: int = 64):
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
        if shape is _EXPANDS:
            return Prepared.compile(statement, self.dialect)
        if shape is None:
            compiled = statement.compile(dialect=self.dialect, cache_key=key)
            if _expands(compiled):  # an IN list's length is in the SQL: nothing to share
                shape = _EXPANDS
                prepared = Prepared.of(compiled, self.dialect)
            else:
                shape = SharedShape(compiled, self.dialect, key)
                prepared = shape.prepare(key)
            with self._lock:
                self._shapes[key.key] = shape
            return prepared
        return shape.prepare(key)

    def __len__(self) -> int:
        return sum(1 for shape in self._shapes.values() if shape is not _EXPANDS)


def _expands(compiled: Any) -> bool:
    return bool(compiled.literal_execute_params or compiled.post_compile_params)


class Prepared:
    """One plan's statement: its driver SQL and the values fixed in it."""

    def __init__(self, shape: Shape, sql: str, binders: dict[str, Callable[[Any], Any]], order: Sequence[str] | None, values: dict):
        self.shape, self.sql, self._binders, self._order = shape, sql, binders, order
        self._fixed = {name: self._bound(name, value) for name, value in values.items()}

    @classmethod
    def compile(cls, statement: sa.Select | sa.CompoundSelect, dialect: sa.Dialect) -> Prepared:
        """A statement compiled for itself alone."""
        return cls.of(statement.compile(dialect=dialect), dialect)

    @classmethod
    def of(cls, compiled: Any, dialect: sa.Dialect) -> Prepared:
        """A compiled statement with its own values; the compiled form is not kept."""
        shape = Shape(compiled, dialect)
        values = dict(compiled.construct_params(escape_names=False, _check=False))
        sql, binders, order = shape.sql, shape.binders, shape.order
        if _expands(compiled):
            # Lists (IN) are expanded into the string once, as SQLAlchemy would on each call:
            # their values are part of the plan; the values left open (a cursor) are not lists.
            expanded = compiled._process_parameters_for_postcompile(values)
            sql, binders, values = expanded.statement, {**binders, **expanded.processors}, dict(expanded.parameters)
            order = expanded.positiontup if compiled.positional else None
        return cls(shape, sql, binders, order, values)

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
