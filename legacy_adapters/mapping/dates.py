"""Legacy date strings: parsing them for output and formatting search bounds for SQL.

Legacy systems store dates as text ('19800131', '2024-03-05 10:15:00') with junk
values ('', '00000000', '0000-00-00'). A format is given in strptime notation.
Formats whose fields run from year down to second with fixed widths sort like
time itself, so search bounds can be compared against the raw column and its
index is used. Junk always sorts below year 0001, which gives a cheap SQL guard.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

_FIELDS = {"%Y": ("year", 4), "%m": ("month", 2), "%d": ("day", 2), "%H": ("hour", 2), "%M": ("minute", 2), "%S": ("second", 2)}
_ORDER = ["year", "month", "day", "hour", "minute", "second"]
STEPS = {"day": timedelta(days=1), "hour": timedelta(hours=1), "minute": timedelta(minutes=1), "second": timedelta(seconds=1)}
_NO_DATE = frozenset("0-:. T/")  # '', '00000000', '0000-00-00 00:00:00': how legacy text says "no date"


class LegacyDateFormat:
    """A fixed-width, most-significant-first legacy date format such as ``%Y%m%d%H%M%S``."""

    def __init__(self, fmt: str, tz: tzinfo):
        self.format = fmt
        self.tz = tz
        tokens = re.findall(r"%[YmdHMS]|[^%]+", fmt)
        if "".join(tokens) != fmt:
            raise ValueError(f"date format '{fmt}': only %Y %m %d %H %M %S and literal separators are supported")
        slices: list[tuple[str, int, int]] = []
        position = 0
        for token in tokens:
            if token in _FIELDS:
                name, width = _FIELDS[token]
                slices.append((name, position, position + width))
                position += width
            else:
                position += len(token)
        names = [name for name, _, _ in slices]
        if names != _ORDER[: len(names)] or len(names) < 3:
            raise ValueError(f"date format '{fmt}' must run year, month, day[, hour, minute, second] in that order")
        self.width = position
        self._slices = [(start, end) for _, start, end in slices]
        self.fields = slices  # (name, start, end) of each field, most significant first
        self.precision = names[-1]
        self.has_time = len(names) > 3
        self.step = STEPS[self.precision]
        self.guard = self.format_bound(datetime(1, 1, 1))  # every junk value sorts below this
        self._from_text = _text_parser(self._slices, tz if self.has_time else None)
        # Timestamps repeat a lot (a lab panel, a batch update), and converting one with its
        # zone is a good share of building a resource: remember the recent ones.
        self.to_fhir = lru_cache(maxsize=65536)(self._to_fhir)

    # -- output -------------------------------------------------------------
    def parse(self, text: str | date | None) -> datetime | None:
        """The legacy value as a datetime (aware when it carries a time), or None for junk.
        Typed DATE/DATETIME columns arrive as date/datetime objects (their SQL bounds are
        formatted the same way); zero dates such as '0000-00-00' arrive as text and are junk."""
        if isinstance(text, date):
            value = text if isinstance(text, datetime) else datetime(text.year, text.month, text.day)
            value = truncate(value, self.precision)
            return value.replace(tzinfo=self.tz) if self.has_time else value
        if not text or len(text) < self.width:
            return None
        try:
            return self._from_text(text)
        except ValueError:
            return None

    def _to_fhir(self, text: str | None, kind: str) -> str | None:
        """FHIR ``date``, ``dateTime`` or ``instant`` text for a legacy value."""
        value = self.parse(text)
        if value is None:
            return None
        if kind == "date" or not self.has_time:
            return value.date().isoformat()
        if kind == "instant":
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return value.isoformat()

    # -- search -------------------------------------------------------------
    def format_bound(self, value: datetime) -> str:
        """A search bound (naive = legacy local time) in the legacy text form."""
        if value.tzinfo is not None:
            value = value.astimezone(self.tz).replace(tzinfo=None)
        return value.strftime(self.format) if value.year >= 1000 else self._format_small_year(value)

    def _format_small_year(self, value: datetime) -> str:
        return (
            self.format.replace("%Y", f"{value.year:04d}")
            .replace("%m", f"{value.month:02d}")
            .replace("%d", f"{value.day:02d}")
            .replace("%H", f"{value.hour:02d}")
            .replace("%M", f"{value.minute:02d}")
            .replace("%S", f"{value.second:02d}")
        )

    def valid(self, column: ColumnElement) -> ColumnElement:
        """Holds a date: junk sorts below year 0001 in a fixed-width format."""
        return column >= self.guard

    def floor(self, value: datetime) -> datetime:
        return truncate(self._local(value), self.precision)

    def ceil(self, value: datetime) -> datetime:
        local = self._local(value)
        floored = truncate(local, self.precision)
        return floored if floored == local else floored + self.step

    def _local(self, value: datetime) -> datetime:
        return value.astimezone(self.tz).replace(tzinfo=None) if value.tzinfo is not None else value


def _text_parser(slices: list[tuple[int, int]], tz: tzinfo | None) -> Callable[[str], datetime]:
    """``text`` → datetime for these fixed-width fields, written out as one call (as a
    hand-written parser would be: a date is parsed for most resources built)."""
    fields = ", ".join(f"int(text[{start}:{end}])" for start, end in slices)
    source = f"def parse(text):\n    return datetime({fields}, tzinfo=tz)\n"
    namespace: dict[str, Any] = {"datetime": datetime, "tz": tz}
    exec(compile(source, "<legacy date format>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["parse"]


def truncate(value: datetime, precision: str) -> datetime:
    keep = _ORDER.index(precision) + 1
    fields = [getattr(value, name) for name in _ORDER[:keep]]
    return datetime(*fields)


def says_no_date(value: Any) -> bool:
    """Legacy "no value" spellings of a date (zero dates, blanks): absent, not junk."""
    return value is None or (isinstance(value, str) and set(value) <= _NO_DATE)
