"""Printed reference ranges → referenceRange (legacy_adapters/mapping/ranges.py), and the mapping's
``range`` transform that uses it with a unit column and a unit table."""

from __future__ import annotations

import pytest

from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.ranges import parse_range
from legacy_adapters.mapping.values import compile_value


@pytest.mark.parametrize(
    "text,unit,expected",
    [
        ("4.0-5.6", "%", {"low": {"value": 4.0, "unit": "%"}, "high": {"value": 5.6, "unit": "%"}, "text": "4.0-5.6"}),
        ("70 - 99", None, {"low": {"value": 70}, "high": {"value": 99}, "text": "70 - 99"}),
        ("0.45 to 4.5", "mIU/L", {"low": {"value": 0.45, "unit": "mIU/L"}, "high": {"value": 4.5, "unit": "mIU/L"}, "text": "0.45 to 4.5"}),
        ("-2-2", None, {"low": {"value": -2}, "high": {"value": 2}, "text": "-2-2"}),
        ("<200", "mg/dL", {"high": {"value": 200, "unit": "mg/dL"}, "text": "<200"}),
        ("<=150", None, {"high": {"value": 150}, "text": "<=150"}),
        (">=60", None, {"low": {"value": 60}, "text": ">=60"}),
        ("> 40", None, {"low": {"value": 40}, "text": "> 40"}),
        ("Neg", "mg/dL", {"text": "Neg"}),
        ("NEGATIVE", None, {"text": "NEGATIVE"}),
        ("10-5", None, {"text": "10-5"}),  # reversed: no range anyone meant
        ("  4.0-5.6  ", None, {"low": {"value": 4.0}, "high": {"value": 5.6}, "text": "4.0-5.6"}),
        ("1.0.2-3", None, {"text": "1.0.2-3"}),
    ],
)
def test_printed_ranges(text, unit, expected):
    assert parse_range(text, unit) == expected


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_is_no_range(blank):
    assert parse_range(blank) is None


class _Context:
    """The least a value expression needs: column slots of a row tuple."""

    columns = ("r.ref", "r.units")

    def slot(self, ref: str) -> int:
        return self.columns.index(ref)


def test_the_range_transform_reads_the_text_and_the_unit_column():
    build = compile_value({"column": "r.ref", "range": {"unit": {"column": "r.units"}}}, _Context(), "here")
    assert build(("<200 ", "mg/dL")) == {"high": {"value": 200, "unit": "mg/dL"}, "text": "<200"}
    assert build(("4.0-5.6", None)) == {"low": {"value": 4.0}, "high": {"value": 5.6}, "text": "4.0-5.6"}
    assert build((None, "mg/dL")) is None
    assert compile_value({"column": "r.ref", "range": True}, _Context(), "here")(("Neg", "x")) == {"text": "Neg"}


def test_the_range_transform_rejects_unknown_options():
    with pytest.raises(MappingError, match="'range' is true or"):
        compile_value({"column": "r.ref", "range": {"units": "x"}}, _Context(), "here")
