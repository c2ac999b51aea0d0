"""Python hooks for the demo mapping: transforms a mapping file cannot say.

A hook receives the listed column values (already trimmed; None when absent)
and returns plain JSON data, or None to leave the element out.
"""

from __future__ import annotations

import re

UCUM = "http://unitsofmeasure.org"

_NUMERIC = re.compile(r"^\s*(?P<comparator><=|>=|<|>)?\s*(?P<value>-?\d+(?:\.\d+)?)\s*$")


def lab_quantity(result: str | None, units: str | None) -> dict | None:
    """'5.4' or '<5' with a legacy unit → valueQuantity; non-numeric results → None."""
    if result is None:
        return None
    match = _NUMERIC.match(result)
    if not match:
        return None
    text = match["value"]
    quantity: dict = {"value": float(text) if "." in text else int(text)}
    if match["comparator"]:
        quantity["comparator"] = match["comparator"]
    if units:
        quantity["unit"] = units  # the mapping's `units:` table adds the UCUM system and code
    return quantity


def lab_text(result: str | None) -> str | None:
    """Qualitative results ('POS', 'NEG', free text) → valueString; numeric ones → None."""
    if result is None or _NUMERIC.match(result):
        return None
    return result


def bmi(weight_lb: object, height_in: object) -> dict | None:
    """Body mass index from the wide vitals row's pounds and inches."""
    try:
        weight, height = float(weight_lb), float(height_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if weight <= 0 or height <= 0:
        return None
    value = round(703.0 * weight / (height * height), 1)
    return {"value": value, "unit": "kg/m2", "system": UCUM, "code": "kg/m2"}


def not_merged(merged_to: object) -> bool:
    """A patient record merged into another is no longer active."""
    return merged_to is None
