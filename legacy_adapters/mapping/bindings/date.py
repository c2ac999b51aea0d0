"""Date parameters on a legacy date column, a period kept as two columns, a date kept in
year/month/day parts, or the first of several of these that holds a date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.errors import InvalidRequest
from facade.search.params import DateValue, Prefix, SearchClause
from legacy_adapters.mapping.bindings.base import Resolve, SearchBinding, missing
from legacy_adapters.mapping.bindings.datesort import iso_text
from legacy_adapters.mapping.bindings.first import FirstOfBinding
from legacy_adapters.mapping.datetypes import PartsDate
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.sqlexpr import FALSE, TRUE, all_of, any_of, negate

DateCodec = Any  # LegacyDateFormat | TypedDate | EpochDate: floor, ceil, format_bound, valid
CodecFor = Callable[[Any, Any], DateCodec]  # (the binding's 'date' key, the column reference) -> codec


def _bounds(codec: DateCodec, value: DateValue) -> tuple[datetime, datetime, datetime, datetime]:
    try:
        return codec.floor(value.low), codec.ceil(value.low), codec.floor(value.high), codec.ceil(value.high)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in the legacy time zone
        raise InvalidRequest("date search value is outside the range of dates the legacy database can hold") from None


def _within(codec: DateCodec, column: ColumnElement) -> ColumnElement:
    """Text dates need no upper guard (junk sorts below year 0001); typed and epoch columns do."""
    return TRUE if hasattr(codec, "guard") else codec.valid(column)


class DateBinding(SearchBinding):
    """A legacy date column compared against bounds in its own form (see dates.py, datetypes.py)."""

    def __init__(self, column: ColumnElement, fmt: DateCodec):
        self.column = column
        self.fmt = fmt

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve, date_format: CodecFor) -> SearchBinding:
        if "first" in spec:
            return FirstOfBinding([cls.from_spec(item, resolve, date_format) for item in spec["first"]])
        if "parts" in spec:
            return PartsBinding.from_spec(spec["parts"], resolve)
        if "column" not in spec:
            raise MappingError("date binding needs 'column' (and 'date' for text columns), 'first' or 'parts'")
        column = resolve(spec["column"])
        if "end" in spec:
            return PeriodBinding(column, resolve(spec["end"]), date_format(spec.get("date"), spec["column"]))
        return cls(column, date_format(spec.get("date"), spec["column"]))

    def valid(self) -> ColumnElement:
        return self.fmt.valid(self.column)

    def present(self) -> ColumnElement:
        """Never NULL (NOT (NULL >= guard) would be NULL, not true): junk and NULL are both missing."""
        return sa.and_(self.column.isnot(None), self.valid())

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, self.present())
        if found is not None:
            return found
        return any_of(*(self.match(value) for value in _dates(clause)))

    def match(self, value: DateValue) -> ColumnElement:
        # The stored value is a range [v, v + precision); bounds are rounded to that precision.
        col, fmt = self.column, self.fmt
        floor_low, ceil_low, floor_high, ceil_high = _bounds(fmt, value)
        b = fmt.format_bound
        within = _within(fmt, col)
        prefix = value.prefix
        if prefix in (Prefix.EQ, Prefix.NE):
            inside = sa.and_(col >= b(ceil_low), col < b(floor_high)) if ceil_low < floor_high else FALSE
            return inside if prefix is Prefix.EQ else all_of(self.valid(), negate(inside))
        if prefix is Prefix.GT:
            return all_of(col >= b(floor_high), within)
        if prefix is Prefix.GE:
            return all_of(col >= b(floor_low), within)
        if prefix is Prefix.SA:
            return all_of(col >= b(ceil_high), within)
        if prefix is Prefix.LT:
            return sa.and_(self.valid(), col < b(ceil_low))
        if prefix is Prefix.LE:
            return sa.and_(self.valid(), col < b(ceil_high))
        return sa.and_(self.valid(), col < b(floor_low))  # EB

    def sort_key(self) -> ColumnElement:
        return self.column

    def iso_key(self) -> ColumnElement:
        return iso_text(self.column, self.fmt)


class PeriodBinding(SearchBinding):
    """A date parameter on a Period (e.g. Encounter.period) kept as two legacy columns.

    The period is [start, end + precision); a junk or empty start or end is an open side
    (R4 search §3.1.1.4.3: a missing end means ongoing). Per the prefixes' definitions for
    ranges: ``eq`` – the period lies inside the search range; ``gt``/``ge`` – the period
    reaches past the search value's end/start; ``lt``/``le`` – it begins before the search
    value's start/end; ``sa`` – it starts after the search range; ``eb`` – it ends before it.
    A row with neither side known never matches. Sorting uses the start.
    """

    def __init__(self, start: ColumnElement, end: ColumnElement, fmt: DateCodec):
        self.start, self.end, self.fmt = start, end, fmt

    def _known(self, column: ColumnElement) -> ColumnElement:
        return sa.and_(column.isnot(None), self.fmt.valid(column))  # never NULL

    def _open(self, column: ColumnElement) -> ColumnElement:
        if hasattr(self.fmt, "guard"):  # text: junk sorts below the guard
            return sa.or_(column.is_(None), column < self.fmt.guard)
        return sa.or_(column.is_(None), sa.not_(self.fmt.valid(column)))

    def present(self) -> ColumnElement:
        return sa.or_(self._known(self.start), self._known(self.end))

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, self.present())
        if found is not None:
            return found
        return any_of(*(self.match(value) for value in _dates(clause)))

    def match(self, value: DateValue) -> ColumnElement:
        s, e, fmt = self.start, self.end, self.fmt
        known = self.present()
        floor_low, ceil_low, floor_high, ceil_high = _bounds(fmt, value)
        b = fmt.format_bound
        prefix = value.prefix
        if prefix in (Prefix.EQ, Prefix.NE):
            inside = sa.and_(self._known(s), s >= b(ceil_low), self._known(e), e < b(floor_high)) if ceil_low < floor_high else FALSE
            return inside if prefix is Prefix.EQ else all_of(known, negate(inside))
        if prefix in (Prefix.GT, Prefix.GE):
            bound = b(floor_high if prefix is Prefix.GT else floor_low)
            return sa.or_(sa.and_(self._known(e), e >= bound), sa.and_(self._open(e), self._known(s)))
        if prefix in (Prefix.LT, Prefix.LE):
            bound = b(ceil_low if prefix is Prefix.LT else ceil_high)
            return sa.or_(sa.and_(self._known(s), s < bound), sa.and_(self._open(s), self._known(e)))
        if prefix is Prefix.SA:
            return sa.and_(self._known(s), s >= b(ceil_high))
        return sa.and_(self._known(e), e < b(floor_low))  # EB

    def sort_key(self) -> ColumnElement:
        return self.start

    def iso_key(self) -> ColumnElement:
        return iso_text(self.start, self.fmt)


class PartsBinding(SearchBinding):
    """A date kept as year, month and day columns, searched at the precision each row has: a
    year-only 1950 is the range 1950-01-01..1950-12-31, so ``birthdate=1950`` finds it and
    ``birthdate=1950-06-01`` does not (``ge``/``le`` compare as for periods)."""

    def __init__(self, parts: PartsDate):
        self.parts = parts

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve) -> PartsBinding:
        return cls(PartsDate(resolve(spec["year"]), *(resolve(spec[k]) if spec.get(k) else None for k in ("month", "day"))))

    def present(self) -> ColumnElement:
        return self.parts.valid()

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, self.present())
        if found is not None:
            return found
        return any_of(*(self.match(value) for value in _dates(clause)))

    def match(self, value: DateValue) -> ColumnElement:
        low, high = self.parts.low(), self.parts.high()
        first = PartsDate.key(_day(value.low))
        last = PartsDate.key(_day(value.high - timedelta(microseconds=1)))
        prefix = value.prefix
        inside = sa.and_(low >= first, high <= last)
        condition = {
            Prefix.EQ: inside,
            Prefix.NE: sa.not_(inside),
            Prefix.GT: high > last,
            Prefix.GE: high >= first,
            Prefix.LT: low < first,
            Prefix.LE: low <= last,
            Prefix.SA: low > last,
            Prefix.EB: high < first,
        }[prefix]
        return sa.and_(self.present(), condition)

    def sort_key(self) -> ColumnElement:
        return sa.case((self.present(), self.parts.low()), else_=sa.null())

    def iso_key(self) -> ColumnElement:
        return iso_text(self.parts, None)


def _day(value: datetime) -> datetime:
    return datetime(value.year, value.month, value.day)  # parts have no time zone: the date as written


def _dates(clause: SearchClause) -> list[DateValue]:
    return [value for value in clause.values if isinstance(value, DateValue)]
