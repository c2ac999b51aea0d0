"""The policy file: strict reading (every mistake with its place), and what each action does."""

from __future__ import annotations

from datetime import date

import pytest

from facade.sandbox.deid import MASKED, REDACTED, Deidentifier
from facade.sandbox.keys import SandboxKey, SandboxKeyError
from facade.sandbox.policy import PolicyError, load_policy

KEY = SandboxKey(bytes(range(32)))
TODAY = date(2026, 12, 4)

MINIMAL = """\
policy: test
title: Test
dates: year
restricted_zip3: ["036"]
resources:
  Patient:
    patient: id
    elements:
      gender: keep
      birthDate: generalise
      address: generalise
  Observation:
    patient: subject
    elements:
      subject: pseudonymise
      code: keep
      note: redact
      effectiveDateTime: keep
      issued: keep
    search:
      patient: subject
      date: effectiveDateTime
"""


def write(tmp_path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("change", "needle", "message"),
    [
        (("      gender: keep", "      gender: keepit"), "keepit", "unknown action 'keepit'"),
        (("      gender: keep", "      genders: keep"), "genders", "Patient.genders is not an element of FHIR R4 Patient"),
        (("      gender: keep", "      name: keep"), "name: keep", "this type identifies people"),
        (("      subject: pseudonymise", "      subject: keep"), "subject: keep", "say pseudonymise"),
        (("      code: keep", "      code: generalise"), "code: generalise", "generalise applies to an Address or a date"),
        (("dates: year", "dates: month"), "dates: month", "dates must be one of year, shift"),
        (("dates: year", "dates: year\nlifetime: 3"), "lifetime", "unknown key 'lifetime' in the policy"),
        (("    patient: id", "    patients: id"), "patients", "unknown key 'patients' in Patient"),
        (
            ("      date: effectiveDateTime", "      date: valueString"),
            "date: valueString",
            "reads 'valueString', which this policy does not let leave",
        ),
        (("  Observation:", "  Observations:"), "Observations", "'Observations' is not a FHIR R4 resource type"),
        (("dates: year", "dates: shift"), "dates: shift", "needs shift_days"),
    ],
)
def test_mistakes_are_reported_with_their_place(tmp_path, change, needle, message):
    text = MINIMAL.replace(*change)
    line = next(number for number, content in enumerate(text.splitlines(), 1) if needle in content)
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert any(p.startswith(f"{path}:{line}:") and message in p for p in caught.value.problems), caught.value.problems


def test_the_shipped_policies_load():
    assert load_policy("safe-harbor").dates == "year"
    shift = load_policy("limited-data-set")
    assert shift.dates == "shift" and shift.shift_days == 365


def deid(tmp_path, text: str = MINIMAL) -> Deidentifier:
    return Deidentifier(load_policy(write(tmp_path, text)), KEY, TODAY)


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "gender": "female",
    "birthDate": "1960-05-17",
    "name": [{"family": "Doe"}],
    "identifier": [{"value": "MRN1"}],
    "address": [{"line": ["1 Main St"], "city": "Springfield", "state": "IL", "postalCode": "62701-1234"}],
    "maritalStatus": {"text": "M"},  # not named: removed
}


def test_allow_list_and_generalise(tmp_path):
    out = deid(tmp_path).resource(PATIENT)
    assert out == {
        "resourceType": "Patient",
        "id": KEY.pseudonym("Patient", "p1"),
        "gender": "female",
        "birthDate": "1960",
        "address": [{"state": "IL", "postalCode": "627"}],
    }


def test_restricted_zip3_and_ages_over_89(tmp_path):
    old = {**PATIENT, "birthDate": "1936-02-01", "address": [{"state": "NH", "postalCode": "03601"}]}
    out = deid(tmp_path).resource(old)
    assert "birthDate" not in out and out["_birthDate"] == MASKED  # 90 in 2026: one category, no year
    assert out["address"] == [{"state": "NH", "postalCode": "000"}]
    assert deid(tmp_path).resource({**old, "birthDate": "1937-12-31"})["birthDate"] == "1937"  # 89


OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "subject": {"reference": "Patient/p1", "display": "Jane Doe"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "1-8", "display": "Thing"}], "text": "Thing"},
    "note": [{"text": "Call Jane at home", "time": "2024-03-05T10:00:00Z"}],
    "effectiveDateTime": "2024-03-05T10:00:00-05:00",
    "issued": "2024-03-06T10:00:00Z",
    "valueString": "not named",
    "extension": [{"url": "http://example.org/secret", "valueString": "x"}],
}


def test_year_dates_redaction_and_references(tmp_path):
    out = deid(tmp_path).resource(OBSERVATION)
    assert out["subject"] == {"reference": f"Patient/{KEY.pseudonym('Patient', 'p1')}"}  # no display
    assert out["note"] == [{"text": REDACTED, "time": "2024"}]
    assert out["effectiveDateTime"] == "2024"
    assert "issued" not in out  # an instant cannot be a year
    assert "valueString" not in out and "extension" not in out
    assert out["code"]["coding"][0]["display"] == "Thing"  # kept: codes and their displays


def test_shifted_dates_follow_the_patient(tmp_path):
    shift = MINIMAL.replace("dates: year", "dates: shift\nshift_days: 30")
    engine = deid(tmp_path, shift)
    offset = KEY.offset_days("Patient/p1", 30)
    assert offset != 0 and -30 <= offset <= 30
    out = engine.resource(OBSERVATION)
    expected = (date(2024, 3, 5).toordinal() + offset) - date(2024, 3, 5).toordinal()
    assert out["effectiveDateTime"] == date.fromordinal(date(2024, 3, 5).toordinal() + expected).isoformat() + "T10:00:00-05:00"
    assert out["issued"].endswith("T10:00:00Z")
    patient = engine.resource({**PATIENT, "birthDate": "1960-05-17"})
    assert patient["birthDate"] == "1960"  # generalise: the shifted date's year
    assert engine.offset_days(OBSERVATION) == engine.offset_days(PATIENT) == offset


def test_a_type_the_policy_does_not_name_is_not_served(tmp_path):
    assert deid(tmp_path).resource({"resourceType": "Practitioner", "id": "d1"}) is None


def test_an_unknown_modifier_extension_withholds_the_resource(tmp_path):
    assert deid(tmp_path).resource({**PATIENT, "modifierExtension": [{"url": "http://x", "valueBoolean": True}]}) is None


def test_pseudonyms_are_keyed_reversible_and_typed():
    legacy = "01aad4d4-34c0-4cff-843e-345751311a7b"
    pseudonym = KEY.pseudonym("Patient", legacy)
    assert pseudonym == KEY.pseudonym("Patient", legacy) and legacy not in pseudonym
    assert KEY.reveal("Patient", pseudonym) == legacy
    assert KEY.reveal("Observation", pseudonym) is None  # bound to its type
    assert KEY.reveal("Patient", pseudonym[:-2] + "AA") is None
    other = SandboxKey(bytes(range(1, 33)))
    assert other.pseudonym("Patient", legacy) != pseudonym and other.reveal("Patient", pseudonym) is None
    for long in ("alg-" + legacy, legacy + "-head-circumference", "A" * 47):
        assert len(KEY.pseudonym("Observation", long)) <= 64 and KEY.reveal("Observation", KEY.pseudonym("Observation", long)) == long
    with pytest.raises(SandboxKeyError):
        KEY.pseudonym("Observation", "A" * 64)  # FHIR allows it; a pseudonym cannot carry it (said, not truncated)


def test_an_id_too_long_for_a_pseudonym_is_withheld_not_an_error(tmp_path):
    engine = deid(tmp_path)
    assert engine.resource({**PATIENT, "id": "A" * 64}) is None
    observation = engine.resource({**OBSERVATION, "subject": {"reference": "Patient/" + "A" * 64}})
    assert observation is not None and "subject" not in observation
