"""The snapshot checker itself: each kind of rule it reads from the official profiles really fails
a resource that breaks it (so a clean walk of the demo means something)."""

from __future__ import annotations

import copy

import pytest

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VS_CATEGORY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}


def _quantity(value, code):
    return {"value": value, "unit": code, "system": UCUM, "code": code}


BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "meta": {"profile": [US_CORE + "us-core-blood-pressure"]},
    "status": "final",
    "category": [VS_CATEGORY],
    "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
    "subject": {"reference": "Patient/p"},
    "effectiveDateTime": "2024-01-01T10:00:00Z",
    "component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": _quantity(120, "mm[Hg]")},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": _quantity(80, "mm[Hg]")},
    ],
}
PULSE_OXIMETRY = {
    "resourceType": "Observation",
    "meta": {"profile": [US_CORE + "us-core-pulse-oximetry"]},
    "status": "final",
    "category": [VS_CATEGORY],
    "code": {"coding": [{"system": LOINC, "code": "59408-5"}, {"system": LOINC, "code": "2708-6"}]},
    "subject": {"reference": "Patient/p"},
    "effectiveDateTime": "2024-01-01T10:00:00Z",
    "valueQuantity": _quantity(97, "%"),
}
PATIENT = {
    "resourceType": "Patient",
    "meta": {"profile": [US_CORE + "us-core-patient"]},
    "identifier": [{"system": "urn:x", "value": "1"}],
    "name": [{"family": "Doe"}],
    "gender": "female",
    "extension": [
        {
            "url": US_CORE + "us-core-race",
            "extension": [
                {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
                {"url": "text", "valueString": "White"},
            ],
        }
    ],
}


def _without_component(resource, code):
    out = copy.deepcopy(resource)
    out["component"] = [c for c in out["component"] if c["code"]["coding"][0]["code"] != code]
    return out


def test_resources_that_meet_their_profiles_pass(checker):
    assert checker.problems(BLOOD_PRESSURE) == []
    assert checker.problems(PULSE_OXIMETRY) == []
    assert checker.problems(PATIENT) == []


def test_a_missing_required_slice_fails(checker):
    problems = checker.problems(_without_component(BLOOD_PRESSURE, "8462-4"))
    assert "us-core-blood-pressure: Observation.component:diastolic: 0 of at least 1" in problems
    assert any("Observation.component: 1 of at least 2" in p for p in problems)
    one_code = copy.deepcopy(PULSE_OXIMETRY)
    one_code["code"]["coding"].pop()
    assert "us-core-pulse-oximetry: Observation.code.coding:O2Sat: 0 of at least 1" in checker.problems(one_code)


def test_missing_required_elements_fail_only_where_the_parent_is_present(checker):
    no_subject = {k: v for k, v in BLOOD_PRESSURE.items() if k != "subject"}
    assert checker.problems(no_subject) == ["us-core-blood-pressure: Observation.subject: 0 of at least 1"]
    no_unit = copy.deepcopy(BLOOD_PRESSURE)
    del no_unit["component"][0]["valueQuantity"]["unit"]
    assert any("component:systolic.valueQuantity.unit: 0 of at least 1" in p for p in checker.problems(no_unit))
    # a required date the legacy lacks, given as a DataAbsentReason extension, is present
    absent = {k: v for k, v in BLOOD_PRESSURE.items() if k != "effectiveDateTime"}
    assert any("effective[x]: 0 of at least 1" in p for p in checker.problems(absent))
    absent["_effectiveDateTime"] = {
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]
    }
    assert checker.problems(absent) == []


def test_fixed_and_pattern_values_fail_when_they_differ(checker):
    wrong_code = copy.deepcopy(BLOOD_PRESSURE)
    wrong_code["code"] = {"coding": [{"system": LOINC, "code": "8480-6"}]}
    assert any("Observation.code" in p and "pattern" in p for p in checker.problems(wrong_code))
    wrong_unit = copy.deepcopy(PULSE_OXIMETRY)
    wrong_unit["valueQuantity"]["code"] = "%{saturation}"
    assert any("valueQuantity.code" in p and "fixed" in p for p in checker.problems(wrong_unit))
    wrong_system = copy.deepcopy(BLOOD_PRESSURE)
    wrong_system["component"][1]["valueQuantity"]["system"] = "urn:local"
    assert any("diastolic.valueQuantity.system" in p for p in checker.problems(wrong_system))


def test_required_bindings_the_package_enumerates_fail_outside_the_value_set(checker):
    lab = {
        "resourceType": "Observation",
        "meta": {"profile": [US_CORE + "us-core-observation-lab"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"text": "glucose"},
        "subject": {"reference": "Patient/p"},
    }
    assert checker.problems(lab) == []
    lab["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}]
    assert any("Observation.category:us-core: 0 of at least 1" in p for p in checker.problems(lab))


def test_extensions_are_held_to_their_own_definitions(checker):
    no_text = copy.deepcopy(PATIENT)
    no_text["extension"][0]["extension"].pop()  # the race extension requires its 'text' part
    assert any("us-core-race" in p and "extension:text: 0 of at least 1" in p for p in checker.problems(no_text))
    with_value = copy.deepcopy(PATIENT)
    with_value["extension"][0]["valueString"] = "White"  # a complex extension has no value (max 0)
    assert any("valueString: 1 of at most 0" in p for p in checker.problems(with_value))


@pytest.mark.parametrize("url", [US_CORE + "us-core-nonexistent", "http://example.org/StructureDefinition/mine"])
def test_claims_of_profiles_the_package_lacks_fail(checker, url):
    assert checker.problems({"resourceType": "Patient", "meta": {"profile": [url]}}) == [f"claims {url}, which the package does not define"]


def test_slices_by_value_set_match_by_the_bound_codes(checker):
    """US Core slices Condition.category by a required value set, not a pattern."""
    condition = {
        "resourceType": "Condition",
        "meta": {"profile": [US_CORE + "us-core-condition-problems-health-concerns"]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": {"text": "hypertension"},
        "subject": {"reference": "Patient/p"},
    }
    assert checker.problems(condition) == []
    condition["category"][0]["coding"][0]["code"] = "encounter-diagnosis"
    assert "us-core-condition-problems-health-concerns: Condition.category:us-core: 0 of at least 1" in checker.problems(condition)
