"""Reading legacy result text, for mapping hooks: '5.4', '<5' and '>= 120' are numbers
(valueQuantity), anything else ('Positive', free text) is text (valueString)."""

from __future__ import annotations

import re

_NUMERIC = re.compile(r"^\s*(?P<comparator><=|>=|<|>)?\s*(?P<value>-?\d+(?:\.\d+)?)\s*$")


def result_quantity(result: str | None, units: str | None) -> dict | None:
    """A numeric result (optionally with a comparator) and its legacy unit → a Quantity; else None."""
    match = _NUMERIC.match(result) if result else None
    if not match:
        return None
    text = match["value"]
    quantity: dict = {"value": float(text) if "." in text else int(text)}
    if match["comparator"]:
        quantity["comparator"] = match["comparator"]
    if units:
        quantity["unit"] = units
    return quantity


def result_text(result: str | None) -> str | None:
    """A result that is not a number → its text; a number → None (it is a Quantity)."""
    if result is None or _NUMERIC.match(result):
        return None
    return result


def profile_if(*values: object, url: str) -> str | None:
    """A profile claimed only when every column it requires has a value."""
    return url if all(value not in (None, "") for value in values) else None


def profile_if_any(*values: object, url: str) -> str | None:
    """A profile claimed when at least one of the columns has a value (e.g. some contact detail, US Core pd-1)."""
    return url if any(value not in (None, "") for value in values) else None
