"""Column converters and exact comparison: how legacy column values meet FHIR text.

**Converters.** A column reference may name a converter after a colon, in templates
(``"Patient/{p.uuid:uuid}"``) and in ``column:`` keys alike. ``uuid`` reads a
``binary(16)`` column (OpenEMR's ids) as the canonical text form
``8-4-4-4-12`` lowercase hex and turns searched text back into the 16 bytes, so
SQL compares binary values and the column's unique index is used. It is a
SQLAlchemy type, so results, bind parameters and keyset cursors all convert alike.

**Exact comparison.** MySQL/MariaDB compare text under the column's collation;
the usual ``*_ci`` PAD SPACE collations ignore case, trailing spaces and (often)
accents, so ``identifier=mrn0001047`` would find ``MRN0001047``. FHIR ids and
tokens are exact. :func:`exact_in` keeps the plain comparison (so the index is
still used) and, on MySQL/MariaDB only, adds a byte-wise recheck of the same values.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

_EMPTY_UUIDS = (b"", bytes(16))  # how OpenEMR-style schemas say "no uuid yet"


def canonical_uuid(text: str) -> str | None:
    """``text`` when it is a uuid in canonical form (lowercase 8-4-4-4-12), else None:
    one row has exactly one id, so 'ABC…' or '{…}' spellings are not the same resource."""
    try:
        parsed = uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return None
    return text if str(parsed) == text else None


class UuidText(sa.types.TypeDecorator):
    """A ``binary(16)`` uuid column seen as its canonical text form."""

    impl = sa.types.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(sa.types.BINARY(16))

    @property
    def python_type(self) -> type:
        return str

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, bytes):
            return value
        text = canonical_uuid(value)
        # Not a uuid: sixteen 0xFF bytes, which no generated uuid is, so nothing matches.
        return uuid.UUID(text).bytes if text else b"\xff" * 16

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        value = bytes(value)
        if value in _EMPTY_UUIDS or len(value) != 16:
            return None
        return str(uuid.UUID(bytes=value))


CONVERTERS = {"uuid": UuidText}


class UuidAsText(ColumnElement):
    """A binary uuid column as its canonical text, computed in SQL: where the uuid must sort and
    compare with other text (ids of a type whose other sources have text ids). The binary column
    itself sorts the same way (lowercase hex keeps the byte order) and keeps its index: use it
    wherever only uuids meet."""

    inherit_cache = True
    type = sa.String()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement):
        self.column = column


def _hex_pieces(hexed: str) -> list[str]:
    return [f"substr({hexed}, {start}, {length})" for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]


@compiles(UuidAsText)
def _uuid_text_sqlite(element: UuidAsText, compiler: Any, **kw: Any) -> str:
    return "lower(" + " || '-' || ".join(_hex_pieces("hex(" + compiler.process(element.column, **kw) + ")")) + ")"


@compiles(UuidAsText, "postgresql")
def _uuid_text_postgresql(element: UuidAsText, compiler: Any, **kw: Any) -> str:
    return "(" + " || '-' || ".join(_hex_pieces("encode(" + compiler.process(element.column, **kw) + ", 'hex')")) + ")"


@compiles(UuidAsText, "mysql")
@compiles(UuidAsText, "mariadb")
def _uuid_text_mysql(element: UuidAsText, compiler: Any, **kw: Any) -> str:
    dashed = "HEX(" + compiler.process(element.column, **kw) + ")"
    for position in (9, 14, 19, 24):
        dashed = f"INSERT({dashed}, {position}, 0, '-')"
    return f"LOWER({dashed})"


def split_converter(ref: str) -> tuple[str, str | None]:
    """``'p.uuid:uuid'`` → ``('p.uuid', 'uuid')``."""
    column, _, converter = ref.partition(":")
    return column, converter or None


def convert(column: ColumnElement, converter: str | None) -> ColumnElement:
    if converter is None:
        return column
    try:
        kind = CONVERTERS[converter]
    except KeyError:
        raise ValueError(f"unknown column converter {converter!r} (known: {sorted(CONVERTERS)})") from None
    return sa.type_coerce(column, kind())


# --------------------------------------------------------------------------- exact text comparison
class MySQLRecheck(ColumnElement):
    """``recheck`` on MySQL/MariaDB (a test on ``BINARY column``); nothing anywhere else.

    It is ANDed beside the plain comparison, which stays a bare ``column = value`` so every
    engine can use its index (a boolean-typed wrapper would be rendered ``(…) = 1`` by
    engines without a boolean type, and that hides the column from the planner)."""

    inherit_cache = True
    type = sa.Boolean()
    _traverse_internals = [("recheck", InternalTraversal.dp_clauseelement)]

    def __init__(self, recheck: ColumnElement):
        self.recheck = recheck


@compiles(MySQLRecheck)
def _no_recheck(element: MySQLRecheck, compiler: Any, **kw: Any) -> str:
    return "(1 = 1)"


@compiles(MySQLRecheck, "mysql")
@compiles(MySQLRecheck, "mariadb")
def _recheck(element: MySQLRecheck, compiler: Any, **kw: Any) -> str:
    return "(" + compiler.process(element.recheck, **kw) + ")"


def exact_in(column: ColumnElement, values: Sequence | ColumnElement) -> ColumnElement:
    """Exact equality with one value (or bind parameter), or membership in several."""
    if not isinstance(values, ColumnElement) and len(values) == 1:
        values = sa.bindparam(None, values[0], type_=column.type)
    if isinstance(values, ColumnElement):
        plain, recheck = column == values, sa.func.binary(column) == values
    else:
        # typed like the column, so the values render as its literals (SQL logs, golden statements)
        plain, recheck = column.in_(list(values)), sa.func.binary(column, type_=column.type).in_(list(values))
    return sa.and_(plain, MySQLRecheck(recheck)) if isinstance(column.type, sa.String) else plain


ANY = object()  # a wildcard in exact_like's pattern pieces


class ExactLike(ColumnElement):
    """``column LIKE pattern``, exact: case-sensitive everywhere. MySQL/MariaDB recheck on
    ``BINARY column``; SQLite (whose LIKE ignores ASCII case) uses GLOB instead."""

    inherit_cache = True
    type = sa.Boolean()
    _traverse_internals = [
        ("pattern", InternalTraversal.dp_clauseelement),
        ("recheck", InternalTraversal.dp_clauseelement),
        ("glob", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement, pieces: Sequence):
        like = "".join("%" if p is ANY else p.replace("/", "//").replace("%", "/%").replace("_", "/_") for p in pieces)
        glob = "".join("*" if p is ANY else "".join(f"[{c}]" if c in "*?[" else c for c in p) for p in pieces)
        self.pattern = column.like(like, escape="/")
        self.recheck = sa.func.binary(column).like(like, escape="/")
        self.glob = column.op("GLOB", return_type=sa.Boolean)(sa.literal(glob, sa.String))


@compiles(ExactLike)
def _like(element: ExactLike, compiler: Any, **kw: Any) -> str:
    return "(" + compiler.process(element.pattern, **kw) + ")"


@compiles(ExactLike, "mysql")
@compiles(ExactLike, "mariadb")
def _like_rechecked(element: ExactLike, compiler: Any, **kw: Any) -> str:
    return "(" + compiler.process(sa.and_(element.pattern, element.recheck), **kw) + ")"


@compiles(ExactLike, "sqlite")
def _glob(element: ExactLike, compiler: Any, **kw: Any) -> str:
    return "(" + compiler.process(element.glob, **kw) + ")"


def exact_like(column: ColumnElement, *pieces: str | object) -> ColumnElement:
    """The column matches literal text pieces and :data:`ANY` wildcards, exactly."""
    return ExactLike(column, pieces)


# --------------------------------------------------------------------------- typed dates on SQLite
class SqliteDateColumn(sa.types.TypeDecorator):
    """A SQLite DATE, DATETIME or TIMESTAMP column as it is stored. SQLite keeps whatever was
    written (ISO text as most tools write it, Unix seconds as some write, junk), where
    SQLAlchemy's own date types would fail on the first value that is not ISO text. Values come
    back raw (the mapping's date codec decides what is a date); dates given as bounds, filters or
    cursor values are written as ISO text, the form that compares with stored ISO text."""

    impl = sa.types.String
    cache_ok = True

    def __init__(self, kind: str = "date"):
        super().__init__()
        self.kind = kind  # date | datetime

    @property
    def python_type(self) -> type:
        return object  # raw: text, numbers…

    def process_bind_param(self, value, dialect):
        if isinstance(value, datetime.datetime):
            text = value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")
            return f"{text}.{value.microsecond:06d}" if value.microsecond else text
        if isinstance(value, datetime.date):
            return value.isoformat()
        return value

    def process_result_value(self, value, dialect):
        return value


def lenient_sqlite_type(column_type: sa.types.TypeEngine) -> sa.types.TypeEngine | None:
    """The reflected type a SQLite column should be read with, when SQLAlchemy's would fail on junk."""
    if isinstance(column_type, (sa.DateTime, sa.TIMESTAMP)):
        return SqliteDateColumn("datetime")
    if isinstance(column_type, sa.Date):
        return SqliteDateColumn("date")
    if isinstance(column_type, sa.Time):
        return SqliteDateColumn("time")
    return None
