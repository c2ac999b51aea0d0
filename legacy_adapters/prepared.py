"""A read or page statement compiled once for its engine and run as the driver's SQL.

A plan's statement never changes, only its bound values; but ``Connection.execute`` works out
its cache key, execution context and result rows again on every call: ~50 µs of Python on a
Patient read whose SQL takes 8 µs on SQLite. Here the compiled string, the values fixed at
compile time and the type conversions are kept, and each call runs through the connection's
own cursor execution, so the engine's statement listeners (metrics, the PostgreSQL watchdog)
and its error handling (a lost connection invalidated, driver errors wrapped as SQLAlchemy's,
which ``legacy_errors`` answers) apply as on any statement. Rows come back as tuples holding
what SQLAlchemy's rows would hold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa


class Prepared:
    def __init__(self, statement: sa.Select | sa.CompoundSelect, dialect: sa.Dialect):
        compiled = statement.compile(dialect=dialect)
        fixed = dict(compiled.construct_params(escape_names=False, _check=False))
        self.sql = compiled.string
        self._binders: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)  # type: ignore[arg-type]
        self._order: Sequence[str] | None = compiled.positiontup if compiled.positional else None
        if compiled.literal_execute_params or compiled.post_compile_params:
            # Lists (IN) are expanded into the string once, as SQLAlchemy would on each call:
            # their values are part of the plan; the values left open (a cursor) are not lists.
            expanded = compiled._process_parameters_for_postcompile(fixed)
            self.sql = expanded.statement
            self._binders.update(expanded.processors)
            self._order = expanded.positiontup if compiled.positional else None
            fixed = dict(expanded.parameters)
        self._fixed = {name: self._bound(name, value) for name, value in fixed.items()}
        self._escaped = compiled.escaped_bind_names
        self._sequence = dialect.execute_sequence_format
        self._dialect = dialect
        self._types = [column.type for column in compiled._result_columns]
        self._converters: list[tuple[int, Callable[[Any], Any]]] | None = None

    def rows(self, connection: sa.Connection, params: Mapping[str, object] | None = None) -> list[tuple]:
        """All rows of the statement with ``params`` bound (values the plan left open)."""
        values = self._fixed
        if params:
            values = {**values, **{name: self._bound(name, value) for name, value in params.items()}}
        arguments: Any
        if self._order is not None:
            arguments = self._sequence([values[name] for name in self._order])
        else:
            arguments = {self._escaped.get(name, name): v for name, v in values.items()} if self._escaped else values
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
            converters = self._converters
            if converters is None:
                converters = self._converters = self._result_converters(cursor.description)
        finally:
            with contextlib.suppress(Exception):  # a lost connection's cursor may not close; its error is already raised
                cursor.close()
        if converters:
            return [_converted(row, converters) for row in rows]
        return rows if isinstance(rows, list) else list(rows)  # pymysql answers a tuple of rows

    def _bound(self, name: str, value: object) -> object:
        binder = self._binders.get(name)
        return binder(value) if binder is not None else value

    def _result_converters(self, description: Sequence[Sequence[Any]]) -> list[tuple[int, Callable[[Any], Any]]]:
        """The columns whose driver values SQLAlchemy's types convert (a SQLite DATE read as a
        date, a binary uuid as text...), decided once from the first result's description."""
        converters: list[tuple[int, Callable[[Any], Any]]] = []
        for index, (type_, column) in enumerate(zip(self._types, description, strict=False)):
            convert = type_._cached_result_processor(self._dialect, column[1])
            if convert is not None:
                converters.append((index, convert))
        return converters


def _converted(row: Sequence[Any], converters: list[tuple[int, Callable[[Any], Any]]]) -> tuple:
    values = list(row)
    for index, convert in converters:
        values[index] = convert(values[index])
    return tuple(values)
