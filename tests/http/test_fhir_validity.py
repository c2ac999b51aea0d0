"""Every resource the demo produces is valid FHIR R4 (fhir.resources R4B models).

The whole demo database is walked through the HTTP API, not a sample: a mapping
change that breaks one legacy corner case (a junk date, a missing unit) fails here.
fhir.resources checks structure and datatypes; required code bindings it leaves
alone are checked here by hand.
"""

from __future__ import annotations

import importlib
import re

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from support.demo_sql import NOTE_REPORTS, RECORD_TYPES, record_sql
from support.fhir_client import walk
from support.us_core import profile_problems

OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
GENDER = {"male", "female", "other", "unknown"}
DATETIME_WITH_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def resources(client, path: str):
    """Yield every resource of a search, over every page; each Bundle page is validated as R4B."""
    for bundle in walk(client, path, on_page=Bundle.model_validate):
        for entry in bundle.get("entry", []):
            yield entry["resource"]


def test_every_patient_is_valid_r4(client, raw_db):
    seen = 0
    for resource in resources(client, "/fhir/Patient?_count=1000"):
        Patient.model_validate(resource)
        assert FHIR_ID.match(resource["id"])
        assert resource["gender"] in GENDER  # US Core: required, 'unknown' when the legacy row has none
        assert resource["meta"]["lastUpdated"].endswith("Z")
        seen += 1
    (expected,) = raw_db.execute("SELECT count(*) FROM pt_master WHERE del_flg IS NULL OR del_flg <> 'Y'").fetchone()
    assert seen == expected


def _expected_observations(raw_db) -> int:
    live = "(v.del_flg IS NULL OR v.del_flg <> 'Y') AND (p.del_flg IS NULL OR p.del_flg <> 'Y')"
    labs = raw_db.execute("SELECT count(*) FROM lab_result v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE " + live).fetchone()[0]
    vitals = raw_db.execute(
        f"""SELECT sum((pulse IS NOT NULL) + (resp_rate IS NOT NULL) + (temp_f IS NOT NULL) + (wt_lb IS NOT NULL)
                  + (ht_in IS NOT NULL) + (spo2 IS NOT NULL) + (head_circ_cm IS NOT NULL) + (wt_lb IS NOT NULL AND ht_in IS NOT NULL)
                  + (bp_sys IS NOT NULL AND bp_dia IS NOT NULL)
                  + (bmi_pctl IS NOT NULL) + (wt_len_pctl IS NOT NULL) + (hc_pctl IS NOT NULL))
            FROM vitals v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE {live}"""
    ).fetchone()[0]
    smoking = raw_db.execute("SELECT count(*) FROM soc_hx v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE " + live).fetchone()[0]
    jobs = raw_db.execute(
        f"SELECT count(*) FROM emp_hx v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE {live} AND v.occ_desc <> ''"
    ).fetchone()[0]
    pregnancy = raw_db.execute(
        f"""SELECT sum((preg_yn IN ('Y', 'N', 'U')) + (COALESCE(preg_intent IN ('Y', 'N', 'U'), 0)))
            FROM ob_hx v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE {live}"""
    ).fetchone()[0]
    answered = "IN ('O', 'S', 'N', 'R')"
    hunger = raw_db.execute(  # the panel and each answer
        f"""SELECT sum(COALESCE(q1_ans {answered} OR q2_ans {answered}, 0) + COALESCE(q1_ans {answered}, 0) + COALESCE(q2_ans {answered}, 0))
            FROM hvs_form v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE {live}"""
    ).fetchone()[0]
    return labs + vitals + smoking + jobs + pregnancy + hunger


def test_every_observation_is_valid_r4(client, raw_db):
    seen = 0
    ids = set()
    for resource in resources(client, "/fhir/Observation?_count=1000"):
        Observation.model_validate(resource)
        assert FHIR_ID.match(resource["id"])
        assert resource["status"] in OBSERVATION_STATUS
        assert resource["subject"]["reference"].startswith("Patient/")
        assert resource["category"][0]["coding"][0]["code"] in ("laboratory", "vital-signs", "social-history", "survey")
        effective = resource.get("effectiveDateTime")
        if effective is not None:  # junk legacy timestamps leave it out rather than invent one
            assert DATETIME_WITH_TIME.match(effective), effective
        assert profile_problems(resource) == [], resource["id"]
        ids.add(resource["id"])
        seen += 1
    assert seen == len(ids) == _expected_observations(raw_db)


# --- the other served types ---------------------------------------------------------------


def _live(*aliases: str) -> str:
    return " AND ".join(f"({a}.del_flg IS NULL OR {a}.del_flg <> 'Y')" for a in aliases)


# type -> SQL counting the legacy rows that are resources of that type
EXPECTED_COUNTS = {
    "Practitioner": "SELECT count(*) FROM staff",
    "Organization": "SELECT (SELECT count(*) FROM org_mstr) + (SELECT count(*) FROM payer_mstr)",
    "Location": "SELECT count(*) FROM dept_loc",
    "Medication": "SELECT count(*) FROM med_cd",
    "Encounter": f"SELECT count(*) FROM enc_visit x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live('x', 'p')}",
    "Condition": f"""SELECT (SELECT count(*) FROM prob_list x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live("x", "p")})
        + (SELECT count(*) FROM enc_dx x JOIN pt_master p ON x.pt_seq = p.pt_seq JOIN enc_visit e ON x.visit_no = e.visit_no
           WHERE {_live("x", "p", "e")})""",
    "MedicationRequest": f"SELECT count(*) FROM rx_order x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live('x', 'p')}",
    "AllergyIntolerance": f"SELECT count(*) FROM allergy x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live('x', 'p')}",
    "Immunization": f"SELECT count(*) FROM immun x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live('x', 'p')}",
    "Procedure": f"SELECT count(*) FROM proc_log x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live('x', 'p')}",
    # lab orders, and the notes that are signed reports
    "DiagnosticReport": f"SELECT (SELECT count(*) FROM lab_order x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live('x', 'p')})"
    f" + (SELECT count(*) FROM ({record_sql(NOTE_REPORTS)}) r)",
}
# One Provenance per live row of each table that has who/when columns (and per Observation).
EXPECTED_COUNTS["Provenance"] = (
    "SELECT "
    + " + ".join(
        f"(SELECT count(*) FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {_live('x', 'p')})"
        for table in ("enc_visit", "prob_list", "allergy", "immun", "rx_order", "proc_log", "lab_order")
    )
    + f""" + (SELECT count(*) FROM pt_master x WHERE {_live("x")})
  + (SELECT count(*) FROM enc_dx x JOIN pt_master p ON x.pt_seq = p.pt_seq JOIN enc_visit e ON x.visit_no = e.visit_no
     WHERE {_live("x", "p", "e")})"""
    # the later tables' rows with who/when (tests/uscore covers those types themselves)
    + "".join(f" + (SELECT count(*) FROM ({record_sql(t)}) r)" for t, spec in RECORD_TYPES.items() if spec[4])
    + f" + (SELECT count(*) FROM ({record_sql(NOTE_REPORTS)}) r)"
)

# Required bindings fhir.resources leaves unchecked: element path -> the codes allowed.
REQUIRED_CODES = {
    "Encounter": {
        "status": {"planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown"}
    },
    "Condition": {
        "clinicalStatus": {"active", "recurrence", "relapse", "inactive", "remission", "resolved"},
        "verificationStatus": {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"},
    },
    "MedicationRequest": {
        "status": {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"},
        "intent": {"proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option"},
    },
    "AllergyIntolerance": {
        "clinicalStatus": {"active", "inactive", "resolved"},
        "verificationStatus": {"unconfirmed", "confirmed", "refuted", "entered-in-error"},
        "category": {"food", "medication", "environment", "biologic"},
        "reaction.severity": {"mild", "moderate", "severe"},
    },
    "Immunization": {"status": {"completed", "entered-in-error", "not-done"}},
    "Procedure": {"status": {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"}},
    "DiagnosticReport": {
        "status": {
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    },
    "Location": {"status": {"active", "suspended", "inactive"}},
}


def _codes(resource: dict, path: str) -> list[str]:
    """Values at a dotted path; CodeableConcepts give their codings' codes."""
    values = [resource]
    for key in path.split("."):
        found = []
        for value in values:
            item = value.get(key) if isinstance(value, dict) else None
            found.extend(item if isinstance(item, list) else [] if item is None else [item])
        values = found
    codes = []
    for value in values:
        codes.extend([c["code"] for c in value.get("coding", [])] if isinstance(value, dict) else [value])
    return codes


@pytest.mark.parametrize("resource_type", list(EXPECTED_COUNTS))
def test_every_resource_of_the_other_types_is_valid_r4(client, raw_db, resource_type):
    model = getattr(importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}"), resource_type)
    ids = []
    for resource in resources(client, f"/fhir/{resource_type}?_count=1000"):
        model.model_validate(resource)
        assert FHIR_ID.match(resource["id"]), resource["id"]
        if "lastUpdated" in resource.get("meta", {}):
            assert resource["meta"]["lastUpdated"].endswith("Z")
        for path, allowed in REQUIRED_CODES.get(resource_type, {}).items():
            assert set(_codes(resource, path)) <= allowed, (resource["id"], path, _codes(resource, path))
        assert profile_problems(resource) == [], resource["id"]  # meta.profile only when the resource meets it
        ids.append(resource["id"])
    (expected,) = raw_db.execute(EXPECTED_COUNTS[resource_type]).fetchone()
    if resource_type == "Provenance":
        expected += _expected_observations(raw_db)
    assert len(ids) == len(set(ids)) == expected > 0


@pytest.mark.parametrize(
    "path",
    ["/fhir/Patient/does-not-exist", "/fhir/Unknown", "/fhir/Patient?birthdate=notadate", "/fhir/Patient?_count=x"],
)
def test_errors_are_valid_operation_outcomes(client, path):
    response = client.get(path)
    assert response.status_code in (400, 404)
    OperationOutcome.model_validate(response.get_json())


def test_capability_statement_is_valid(client):
    CapabilityStatement.model_validate(client.get("/fhir/metadata").get_json())
