"""Dates the legacy database keeps in typed columns, as epoch numbers, or in year/month/day parts.

Next to text dates (:class:`~legacy_adapters.mapping.dates.LegacyDateFormat`), a date column is
one of:

* :class:`TypedDate` – a DATE, DATETIME or TIMESTAMP column. Bounds are bound as date/datetime
  values, so every engine compares them natively and uses the column's index. SQLite keeps
  whatever was written in such a column: the façade reads it raw (``SqliteDateColumn``), takes
  ISO text as a date, and anything else (an epoch number some tooling wrote, 'unknown') as junk.
* :class:`EpochDate` – seconds (or milliseconds) since 1970-01-01 UTC in a numeric column
  (integer or REAL). Its dates are UTC: a date-only value written as midnight UTC stays that day.
* :class:`PartsDate` – year, month and day in integer columns; a value is ``YYYY``, ``YYYY-MM``
  or ``YYYY-MM-DD`` and is searched at that precision.

Each answers the questions the date bindings ask (``floor``/``ceil`` of a search bound at the
column's precision, ``format_bound`` to the column's own form, ``valid`` for what is a date at
all) and ``to_fhir`` for output. A value the column's type cannot decode is junk: absent in
the resource, ``:missing`` in searches, reported by ``mapping check``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from legacy_adapters.mapping.dates import STEPS, truncate

_MIN, _MAX = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)
_EPOCH = datetime(1970, 1, 1)


class TypedDate:
    """A DATE (``kind='date'``) or DATETIME/TIMESTAMP (``'datetime'``) column."""

    def __init__(self, kind: str, tz: tzinfo, aware: bool = False):
        self.kind = kind
        self.tz = tz
        self.aware = aware  # TIMESTAMP WITH TIME ZONE: bounds are bound as instants
        self.has_time = kind == "datetime"
        self.precision = "second" if self.has_time else "day"
        self.step = STEPS[self.precision]
        self.to_fhir = lru_cache(maxsize=65536)(self._to_fhir)

    def parse(self, value: Any) -> datetime | None:
        if isinstance(value, str):
            value = _iso(value)
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(self.tz).replace(tzinfo=None)
        elif isinstance(value, date):
            value = datetime(value.year, value.month, value.day)
        else:
            return None  # numbers, bytes…: not what a date column holds
        value = truncate(value, self.precision)
        return value.replace(tzinfo=self.tz) if self.has_time else value

    def _to_fhir(self, value: Any, kind: str) -> str | None:
        return render(self.parse(value), kind, self.has_time)

    def floor(self, value: datetime) -> datetime:
        return truncate(_local(value, self.tz), self.precision)

    def ceil(self, value: datetime) -> datetime:
        local = _local(value, self.tz)
        floored = truncate(local, self.precision)
        return floored if floored == local else floored + self.step

    def format_bound(self, value: datetime) -> Any:
        value = _local(value, self.tz)
        if not self.has_time:
            return value.date()
        return value.replace(tzinfo=self.tz) if self.aware else value

    def valid(self, column: ColumnElement) -> ColumnElement:
        return sa.and_(column >= self.format_bound(_MIN), column <= self.format_bound(_MAX))


class EpochDate:
    """Seconds (``scale=1``) or milliseconds (``scale=1000``) since 1970-01-01 UTC."""

    has_time = True
    precision = "second"
    step = STEPS["second"]

    def __init__(self, scale: int = 1):
        self.scale = scale
        self.tz = UTC
        self.to_fhir = lru_cache(maxsize=65536)(self._to_fhir)

    def parse(self, value: Any) -> datetime | None:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return None
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return None
        try:
            moment = _EPOCH + timedelta(seconds=float(value) / self.scale)
        except (OverflowError, ValueError):
            return None
        return truncate(moment, "second").replace(tzinfo=UTC)

    def _to_fhir(self, value: Any, kind: str) -> str | None:
        return render(self.parse(value), kind, True)

    def floor(self, value: datetime) -> datetime:
        return truncate(_local(value, UTC), "second")

    def ceil(self, value: datetime) -> datetime:
        local = _local(value, UTC)
        floored = truncate(local, "second")
        return floored if floored == local else floored + self.step

    def format_bound(self, value: datetime) -> int:
        return int((_local(value, UTC) - _EPOCH).total_seconds()) * self.scale

    def valid(self, column: ColumnElement) -> ColumnElement:
        # On SQLite any text sorts above every number: the upper bound keeps junk text out too.
        return sa.and_(column >= self.format_bound(_MIN), column <= self.format_bound(_MAX))


class PartsDate:
    """Year, month and day columns. In SQL a value is the day range ``[low, high]`` as
    ``YYYYMMDD`` integers (a missing month or day spans the year or month), compared with search
    bounds of the same form."""

    has_time = False
    precision = "day"

    def __init__(self, year: ColumnElement, month: ColumnElement | None, day: ColumnElement | None):
        self.year, self.month, self.day = year, month, day

    @staticmethod
    def to_fhir(year: Any, month: Any = None, day: Any = None) -> str | None:
        """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``; None when the parts make no date (junk)."""
        try:
            y = int(year)
            m = int(month) if month is not None else None
            d = int(day) if day is not None else None
            if not 1 <= y <= 9999 or (d is not None and m is None):
                return None
            if m is None:
                return f"{y:04d}"
            if d is None:
                date(y, m, 1)
                return f"{y:04d}-{m:02d}"
            return date(y, m, d).isoformat()
        except (TypeError, ValueError):
            return None

    def valid(self) -> ColumnElement:
        """The parts make a date (days beyond the month's end are not checked in SQL)."""
        month, day = self.month, self.day
        conditions = [self.year.isnot(None), self.year >= 1, self.year <= 9999]
        if month is not None:
            conditions.append(sa.or_(month.is_(None), sa.and_(month >= 1, month <= 12)))
        if day is not None:
            valid_day = sa.and_(day >= 1, day <= 31)
            conditions.append(sa.or_(day.is_(None), sa.and_(valid_day, month.isnot(None)) if month is not None else sa.false()))
        return sa.and_(*conditions)

    def low(self) -> ColumnElement:
        month = sa.func.coalesce(self.month, 1) if self.month is not None else sa.literal(1)
        day = sa.func.coalesce(self.day, 1) if self.day is not None else sa.literal(1)
        return self.year * 10000 + month * 100 + day

    def high(self) -> ColumnElement:
        month = sa.func.coalesce(self.month, 12) if self.month is not None else sa.literal(12)
        day = sa.func.coalesce(self.day, 31) if self.day is not None else sa.literal(31)
        return self.year * 10000 + month * 100 + day

    @staticmethod
    def key(value: datetime) -> int:
        return value.year * 10000 + value.month * 100 + value.day


def render(value: datetime | None, kind: str, has_time: bool) -> str | None:
    """FHIR ``date``, ``dateTime`` or ``instant`` text of a parsed value."""
    if value is None:
        return None
    if kind == "date" or not has_time:
        return value.date().isoformat()
    if kind == "instant":
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _iso(text: str) -> datetime | date | None:
    text = text.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        return None


def _local(value: datetime, tz: tzinfo) -> datetime:
    return value.astimezone(tz).replace(tzinfo=None) if value.tzinfo is not None else value


def codec_for(fmt: Any, column: ColumnElement, ref: Any, tz: tzinfo, formats: dict) -> Any:
    """The codec of a date column: its text format (shared per format in ``formats``), ``epoch`` or
    ``epoch_ms``, or – no format given – what its type says (DATE, DATETIME/TIMESTAMP, numbers)."""
    from legacy_adapters.mapping.dates import LegacyDateFormat
    from legacy_adapters.mapping.errors import MappingError
    from legacy_adapters.mapping.yamlpos import mark_of

    if fmt is not None and "%" in str(fmt):
        if fmt not in formats:
            try:
                formats[fmt] = LegacyDateFormat(str(fmt), tz)
            except ValueError as exc:
                raise MappingError(str(exc), mark_of(fmt)) from None
        return formats[fmt]
    kind = column.type
    numeric = isinstance(kind, (sa.Integer, sa.Float, sa.Numeric))
    if fmt in ("epoch", "epoch_ms"):
        if not numeric and getattr(kind, "kind", "") != "date":
            raise MappingError(f"{str(ref)!r} is {kind}: epoch dates are numbers (an integer or real column)", mark_of(fmt))
        return EpochDate(1000 if fmt == "epoch_ms" else 1)
    if fmt is not None:
        raise MappingError(f"date {str(fmt)!r}: expected a format such as '%Y%m%d', or epoch, or epoch_ms", mark_of(fmt))
    sqlite_kind = getattr(kind, "kind", None)  # columns.SqliteDateColumn
    if sqlite_kind in ("date", "datetime"):
        return TypedDate(sqlite_kind, tz)
    if isinstance(kind, sa.DateTime):
        return TypedDate("datetime", tz, aware=bool(getattr(kind, "timezone", False)))
    if isinstance(kind, sa.Date):
        return TypedDate("date", tz)
    if numeric:
        return EpochDate(1)
    raise MappingError(
        f"{str(ref)!r} is {kind}, not a DATE/DATETIME/TIMESTAMP column: give its format, e.g. date: '%Y-%m-%d %H:%M:%S'", mark_of(ref)
    )
