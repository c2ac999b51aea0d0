"""Reference ranges as legacy systems print them, read into ``Observation.referenceRange``.

``'4.0-5.6'``, ``'4.0 - 5.6'`` and ``'4 to 5.6'`` give low and high; ``'<200'`` and ``'<=200'`` a
high; ``'>60'`` and ``'>=60'`` a low; anything else (``'Neg'``, ``'SEE REPORT'``) is text only. The
legacy text is always kept in ``text``: it says what the numbers cannot (whether a bound is
inclusive, a qualitative expectation). Numbers keep the precision they were printed with
(``4.0`` stays a decimal, ``70`` an integer), so every database gives the same JSON.

In a mapping: ``{column: r.ref_text, range: {unit: {column: r.units}}, units: lab-units}``; the
unit table then gives ``low`` and ``high`` their UCUM system and code.
"""

from __future__ import annotations

import re
from functools import lru_cache

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_BETWEEN = re.compile(rf"^\s*(?P<low>{_NUMBER})\s*(?:-|–|to)\s*(?P<high>{_NUMBER})\s*$", re.IGNORECASE)
_BOUND = re.compile(rf"^\s*(?P<op><=|>=|<|>|≤|≥)\s*(?P<value>{_NUMBER})\s*$")
_UPPER = {"<", "<=", "≤"}


def _number(text: str) -> int | float:
    text = text.lstrip("+")
    return float(text) if "." in text else int(text)


def parse_range(text: str | None, unit: str | None = None) -> dict | None:
    """Printed range text (and the result's unit) → a ``referenceRange`` item; None when blank."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    low, high = _bounds(text)
    item: dict = {}
    for name, value in (("low", low), ("high", high)):
        if value is not None:
            item[name] = {"value": value, **({"unit": unit} if unit else {})}
    item["text"] = text
    return item


@lru_cache(maxsize=4096)
def _bounds(text: str) -> tuple[int | float | None, int | float | None]:
    """(low, high) of a printed range. A laboratory prints the same few ranges on every result of
    a test, so the regular expressions run once per distinct text (they cost ~5 µs a row)."""
    between = _BETWEEN.match(text)
    if between:
        low, high = _number(between["low"]), _number(between["high"])
        if low > high:  # '10-5' is no range anyone meant: keep it as the text it is
            return None, None
        return low, high
    bound = _BOUND.match(text)
    if not bound:
        return None, None
    value = _number(bound["value"])
    return (None, value) if bound["op"] in _UPPER else (value, None)
