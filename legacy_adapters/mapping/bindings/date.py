"""Date parameters on a legacy date column, or on a period kept as two columns."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.errors import InvalidRequest
from facade.search.params import DateValue, Prefix, SearchClause
from legacy_adapters.mapping.bindings.base import Resolve, SearchBinding, missing
from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.sqlexpr import FALSE, all_of, any_of, negate


class DateBinding(SearchBinding):
    """A legacy text date column compared against formatted bounds (see :mod:`dates`)."""

    def __init__(self, column: ColumnElement, fmt: LegacyDateFormat):
        self.column = column
        self.fmt = fmt

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve, date_format: Callable[[str], LegacyDateFormat]) -> DateBinding | PeriodBinding:
        if "date" not in spec:
            raise MappingError("date binding needs 'date' (the legacy format, e.g. '%Y%m%d')")
        if "end" in spec:
            return PeriodBinding(resolve(spec["column"]), resolve(spec["end"]), date_format(spec["date"]))
        return cls(resolve(spec["column"]), date_format(spec["date"]))

    def valid(self) -> ColumnElement:
        return self.column >= self.fmt.guard

    def predicate(self, clause: SearchClause) -> ColumnElement:
        # Never NULL (NOT (NULL >= guard) would be NULL, not true): junk and NULL are both missing.
        found = missing(clause, sa.and_(self.column.isnot(None), self.valid()))
        if found is not None:
            return found
        return any_of(*(self._match(value) for value in _dates(clause)))

    def _match(self, value: DateValue) -> ColumnElement:
        # The stored value is a range [v, v + precision); bounds are rounded to that precision.
        col, fmt = self.column, self.fmt
        try:
            floor_low, ceil_low = fmt.floor(value.low), fmt.ceil(value.low)
            floor_high, ceil_high = fmt.floor(value.high), fmt.ceil(value.high)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in the legacy time zone
            raise InvalidRequest("date search value is outside the range of dates the legacy database can hold") from None
        b = fmt.format_bound
        prefix = value.prefix
        if prefix in (Prefix.EQ, Prefix.NE):
            inside = sa.and_(col >= b(ceil_low), col < b(floor_high)) if ceil_low < floor_high else FALSE
            return inside if prefix is Prefix.EQ else all_of(self.valid(), negate(inside))
        if prefix is Prefix.GT:
            return col >= b(floor_high)
        if prefix is Prefix.GE:
            return col >= b(floor_low)
        if prefix is Prefix.SA:
            return col >= b(ceil_high)
        if prefix is Prefix.LT:
            return sa.and_(self.valid(), col < b(ceil_low))
        if prefix is Prefix.LE:
            return sa.and_(self.valid(), col < b(ceil_high))
        return sa.and_(self.valid(), col < b(floor_low))  # EB

    def sort_key(self) -> ColumnElement:
        return self.column


class PeriodBinding(SearchBinding):
    """A date parameter on a Period (e.g. Encounter.period) kept as two legacy text columns.

    The period is [start, end + precision); a junk or empty start or end is an open side
    (R4 search §3.1.1.4.3: a missing end means ongoing). Per the prefixes' definitions for
    ranges: ``eq`` – the period lies inside the search range; ``gt``/``ge`` – the period
    reaches past the search value's end/start; ``lt``/``le`` – it begins before the search
    value's start/end; ``sa`` – it starts after the search range; ``eb`` – it ends before it.
    A row with neither side known never matches. Sorting uses the start.
    """

    def __init__(self, start: ColumnElement, end: ColumnElement, fmt: LegacyDateFormat):
        self.start, self.end, self.fmt = start, end, fmt

    def _known(self, column: ColumnElement) -> ColumnElement:
        return sa.and_(column.isnot(None), column >= self.fmt.guard)  # never NULL

    def _open(self, column: ColumnElement) -> ColumnElement:
        return sa.or_(column.is_(None), column < self.fmt.guard)

    def predicate(self, clause: SearchClause) -> ColumnElement:
        known = sa.or_(self._known(self.start), self._known(self.end))
        found = missing(clause, known)
        if found is not None:
            return found
        return any_of(*(self._match(value, known) for value in _dates(clause)))

    def _match(self, value: DateValue, known: ColumnElement) -> ColumnElement:
        s, e, fmt = self.start, self.end, self.fmt
        try:
            floor_low, ceil_low = fmt.floor(value.low), fmt.ceil(value.low)
            floor_high, ceil_high = fmt.floor(value.high), fmt.ceil(value.high)
        except OverflowError:
            raise InvalidRequest("date search value is outside the range of dates the legacy database can hold") from None
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


def _dates(clause: SearchClause) -> list[DateValue]:
    return [value for value in clause.values if isinstance(value, DateValue)]
