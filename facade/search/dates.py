"""FHIR date/dateTime search values as half-open ranges [low, high).

A value is a range at its own precision: ``2024`` is the whole year,
``2024-03-05T10:00`` one minute. Values without a zone are naive and are read
in the legacy source's time zone by the backend (R4 search §3.1.1.4.7).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from facade.errors import InvalidRequest

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def _add_months(value: datetime, months: int) -> datetime:
    month_index = value.month - 1 + months
    return value.replace(year=value.year + month_index // 12, month=month_index % 12 + 1)


def parse_date_range(text: str) -> tuple[datetime, datetime]:
    """Parse a FHIR date/dateTime/instant into its [low, high) range."""
    match = _DATE_RE.fullmatch(text)
    if not match:
        raise InvalidRequest(f"'{text}' is not a valid FHIR date (expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][zone])")
    g = match.groupdict()
    try:
        tz = None
        if g["tz"] == "Z":
            tz = UTC
        elif g["tz"]:
            sign = 1 if g["tz"][0] == "+" else -1
            hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        year = int(g["y"])
        if g["m"] is None:
            low = datetime(year, 1, 1)
            return low, low.replace(year=year + 1)
        month = int(g["m"])
        if g["d"] is None:
            low = datetime(year, month, 1)
            return low, _add_months(low, 1)
        day = int(g["d"])
        if g["H"] is None:
            low = datetime(year, month, day)
            return low, low + timedelta(days=1)
        hour, minute = int(g["H"]), int(g["M"])
        if g["S"] is None:
            low = datetime(year, month, day, hour, minute, tzinfo=tz)
            return low, low + timedelta(minutes=1)
        second = int(g["S"])
        fraction = g["f"]
        micro = int((fraction or "0").ljust(6, "0")[:6])
        low = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        step = timedelta(microseconds=1) if fraction else timedelta(seconds=1)
        return low, low + step
    except (ValueError, OverflowError):  # e.g. month 13, Feb 30, +25:00; 9999-12-31 has no day after it
        # Said in plain words: Python's own message ("offset must be a timedelta strictly between…") is not for clients.
        raise InvalidRequest(
            f"'{text}' is not a date that exists (years 0001–9998, months 01–12, a day of that month, "
            "hours 00–23, minutes and seconds 00–59, a zone offset under 24 hours)"
        ) from None
