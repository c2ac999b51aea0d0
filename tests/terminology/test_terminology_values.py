"""Crosswalk, unit and alias transforms of value expressions, on the shipped demo crosswalk set."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from legacy_adapters.mapping.bindings import TokenBinding
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.values import compile_value
from terminology.registry import Terminology

DEMO_SET = Path(__file__).resolve().parents[2] / "terminology" / "crosswalks" / "demo" / "crosswalks.yaml"
UCUM = "http://unitsofmeasure.org"


class Ctx:
    terminology = Terminology([DEMO_SET])

    def __init__(self):
        self.refs: list[str] = []

    def slot(self, ref):
        if ref not in self.refs:
            self.refs.append(ref)
        return self.refs.index(ref)

    def hook(self, name):
        return {"quantity": lambda value, unit: {"value": float(value), "unit": unit}}[name]


def value(spec, *row):
    ctx = Ctx()
    return compile_value(spec, ctx, "test")(tuple(row))


def test_crosswalk_expands_to_standard_and_local_codings():
    assert value({"column": "d", "crosswalk": "demo-problem"}, "HTN2") == [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10", "display": "Essential (primary) hypertension"},
        {"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertensive disorder"},
        {"system": "urn:fhir-facade:demo:problem", "code": "HTN2", "display": "ESSENTIAL HYPERTENSION"},
    ]
    # A code the crosswalk has never heard of keeps its local coding; nothing is invented.
    assert value({"column": "d", "crosswalk": "demo-med"}, "999999 ") == [{"system": "urn:fhir-facade:demo:med", "code": "999999"}]
    assert value({"column": "d", "crosswalk": "demo-med"}, None) is None


def test_units_map_to_ucum_and_convert_only_when_asked():
    assert value({"column": "u", "units": "demo-lab-units"}, "MG/DL") == "mg/dL"
    assert value({"column": "u", "units": "demo-lab-units"}, "furlongs") is None
    spec = {"hook": "quantity", "columns": ["v", "u"], "units": "demo-lab-units"}
    assert value(spec, "150", "lb") == {"value": 150.0, "unit": "lb", "system": UCUM, "code": "[lb_av]"}
    assert value({**spec, "convert": True}, "150", "lb") == {
        "value": round(150 * 0.45359237, 6),
        "unit": "kg",
        "system": UCUM,
        "code": "kg",
    }
    assert value({**spec, "convert": True}, "13.5", "g/dl") == {"value": 135, "unit": "g/L", "system": UCUM, "code": "g/L"}
    assert value(spec, "3", "furlongs") == {"value": 3.0, "unit": "furlongs"}  # unknown unit: text kept, no code


def test_split_codings_takes_a_named_alias_table():
    spec = {"column": "dx", "split_codings": {"systems": "standard"}}
    assert value(spec, "ICD10:E11.9;SNOMED-CT:44054006") == [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"},
        {"system": "http://snomed.info/sct", "code": "44054006"},
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {"column": "a", "crosswalk": "no-such"},
        {"column": "a", "units": "no-such"},
        {"column": "a", "convert": True},
        {"column": "a", "split_codings": {"systems": "no-such"}},
    ],
)
def test_unknown_names_fail_at_load_time(spec):
    with pytest.raises(MappingError):
        value(spec, "x")


def test_a_crosswalk_after_split_codings_translates_only_items_in_its_local_system():
    spec = {
        "column": "d",
        "split_codings": {"systems": {"ICD10": "http://hl7.org/fhir/sid/icd-10-cm", "LOCAL": "urn:fhir-facade:demo:problem"}},
        "crosswalk": "demo-problem",
    }
    assert value(spec, "ICD10:I10;LOCAL:HTN2;LOCAL:NOPE") == [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10", "display": "Essential (primary) hypertension"},  # given once
        {"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertensive disorder"},
        {"system": "urn:fhir-facade:demo:problem", "code": "HTN2", "display": "ESSENTIAL HYPERTENSION"},
        {"system": "urn:fhir-facade:demo:problem", "code": "NOPE"},  # unknown local code: kept, nothing guessed
    ]
    assert value(spec, "ICD10:E11.9") == [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]


def test_token_bindings_read_alias_tables_by_name():
    column = sa.column("dx", sa.String)
    binding = TokenBinding.from_spec(
        {"column": "d", "split_codings": {"systems": "standard"}}, lambda _ref: column, terminology=Ctx.terminology
    )
    assert binding.codings[0].systems["ICD10"] == "http://hl7.org/fhir/sid/icd-10-cm"
    with pytest.raises(MappingError, match="unknown alias table 'nope'"):
        TokenBinding.from_spec({"column": "d", "split_codings": {"systems": "nope"}}, lambda _ref: column, terminology=Ctx.terminology)
