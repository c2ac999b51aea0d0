"""Dates of different kinds as one sortable text: ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``.

A ``first:`` date parameter (a timestamp, else a date) sorts by whichever value each row has.
The kinds differ (a DATE, epoch seconds, a text format, year/month/day parts), so each becomes
ISO text in SQL, in each engine's own functions; text of this form sorts like time, a date
before the times of its day.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.mapping.datetypes import EpochDate, PartsDate, TypedDate

_SEPARATORS = {"month": "-", "day": "-", "hour": "T", "minute": ":", "second": ":"}


def iso_text(column: Any, codec: Any) -> ColumnElement:
    if isinstance(column, PartsDate):
        return _IsoParts(column.year, column.month, column.day)
    if isinstance(codec, LegacyDateFormat):
        return _from_text(column, codec)
    if isinstance(codec, EpochDate):
        return _IsoDate(column, "epoch", codec.scale)
    if isinstance(codec, TypedDate):
        return _IsoDate(column, codec.kind, 1)
    raise TypeError(f"no ISO text for {codec!r}")


def _from_text(column: ColumnElement, fmt: LegacyDateFormat) -> ColumnElement:
    """A fixed-width text date rebuilt from its fields with substrings (every engine has them)."""
    expr: ColumnElement | None = None
    for name, start, end in fmt.fields:
        piece = sa.func.substr(column, start + 1, end - start, type_=sa.String)
        expr = piece if expr is None else expr + sa.literal(_SEPARATORS[name], sa.String) + piece
    return expr  # type: ignore[return-value]


class _IsoDate(ColumnElement):
    inherit_cache = True
    type = sa.String()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("kind", InternalTraversal.dp_string),
        ("scale", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, column: ColumnElement, kind: str, scale: int):
        self.column, self.kind, self.scale = column, kind, scale


class _IsoParts(ColumnElement):
    inherit_cache = True
    type = sa.String()
    _traverse_internals = [
        ("year", InternalTraversal.dp_clauseelement),
        ("month", InternalTraversal.dp_clauseelement),
        ("day", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, year: ColumnElement, month: ColumnElement | None, day: ColumnElement | None):
        self.year = year
        self.month = month if month is not None else sa.literal(1)
        self.day = day if day is not None else sa.literal(1)


def _seconds(element: _IsoDate, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return column if element.scale == 1 else f"({column} / {element.scale})"


@compiles(_IsoDate, "sqlite")
def _iso_sqlite(element: _IsoDate, compiler: Any, **kw: Any) -> str:
    if element.kind == "epoch":
        return f"strftime('%Y-%m-%dT%H:%M:%S', {_seconds(element, compiler, **kw)}, 'unixepoch')"
    pattern = "%Y-%m-%d" if element.kind == "date" else "%Y-%m-%dT%H:%M:%S"
    return f"strftime('{pattern}', {compiler.process(element.column, **kw)})"


@compiles(_IsoDate, "postgresql")
def _iso_postgresql(element: _IsoDate, compiler: Any, **kw: Any) -> str:
    if element.kind == "epoch":
        value = f"(to_timestamp({_seconds(element, compiler, **kw)}) AT TIME ZONE 'UTC')"
    else:
        value = compiler.process(element.column, **kw)
    pattern = "YYYY-MM-DD" if element.kind == "date" else 'YYYY-MM-DD"T"HH24:MI:SS'
    return f"to_char({value}, '{pattern}')"


@compiles(_IsoDate, "mysql")
@compiles(_IsoDate, "mariadb")
def _iso_mysql(element: _IsoDate, compiler: Any, **kw: Any) -> str:
    if element.kind == "epoch":  # not FROM_UNIXTIME: it answers in the session's time zone
        value = f"TIMESTAMPADD(SECOND, FLOOR({_seconds(element, compiler, **kw)}), '1970-01-01 00:00:00')"
    else:
        value = compiler.process(element.column, **kw)
    pattern = "%%Y-%%m-%%d" if element.kind == "date" else "%%Y-%%m-%%dT%%H:%%i:%%s"
    return f"DATE_FORMAT({value}, '{pattern}')"


@compiles(_IsoParts, "sqlite")
def _parts_sqlite(element: _IsoParts, compiler: Any, **kw: Any) -> str:
    year, month, day = (compiler.process(part, **kw) for part in (element.year, element.month, element.day))
    return f"printf('%04d-%02d-%02d', {year}, COALESCE({month}, 1), COALESCE({day}, 1))"


@compiles(_IsoParts)
def _parts_lpad(element: _IsoParts, compiler: Any, **kw: Any) -> str:
    year, month, day = (compiler.process(part, **kw) for part in (element.year, element.month, element.day))
    text = "CHAR" if compiler.dialect.name in ("mysql", "mariadb") else "TEXT"
    pieces = [f"LPAD(CAST({year} AS {text}), 4, '0')", f"LPAD(CAST(COALESCE({month}, 1) AS {text}), 2, '0')"]
    pieces.append(f"LPAD(CAST(COALESCE({day}, 1) AS {text}), 2, '0')")
    return f"CONCAT({pieces[0]}, '-', {pieces[1]}, '-', {pieces[2]})"
