"""The new types in the OpenEMR mapping: clinical notes (form_clinical_notes) and implanted devices
(lists of type medical_device), from OpenEMR's real DDL in MariaDB, checked against SQL."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
import sqlalchemy as sa
from fhir.resources.R4B import get_fhir_model_class
from uscore_profiles import profile_problems

from facade.app import create_app
from facade.config import Settings
from support.fhir_client import get_json, q, walk
from support.openemr_fixture import drop, load, openemr_ddl_path, text_id

MAPPING = str(os.path.join(os.path.dirname(__file__), "..", "..", "legacy_adapters", "sources", "openemr", "mapping.yaml"))
DATABASE = f"fhir_facade_test_openemr_uscore_{os.getpid()}"

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def openemr(request):
    ddl = openemr_ddl_path()
    if ddl is None:
        pytest.skip("OpenEMR DDL not found: needs <repo>/../shared/reference/openemr/openemr_subset.sql or /work/shared")
    admin_url = request.getfixturevalue("mariadb_url")
    url = load(admin_url, DATABASE, ddl)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    yield url, engine
    engine.dispose()
    drop(admin_url, DATABASE)


@pytest.fixture(scope="module")
def client(openemr):
    app = create_app(Settings(auth_mode="off", database_url=openemr[0], mapping=MAPPING, base_url="http://testserver/fhir"))
    return app.test_client()


def _sql(openemr, statement: str, **params) -> list[tuple]:
    with openemr[1].connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(statement), params)]


def _ids(client, url: str) -> set[str]:
    return {e["resource"]["id"] for page in walk(client, url) for e in page.get("entry", []) if e["search"]["mode"] == "match"}


NOTES = (
    "SELECT n.uuid, n.description FROM form_clinical_notes n JOIN patient_data p ON p.pid = n.pid "
    "WHERE n.activity = 1 AND n.uuid IS NOT NULL AND p.uuid IS NOT NULL AND n.description IS NOT NULL"
)


LABS = (
    "SELECT rp.uuid FROM procedure_report rp JOIN procedure_order o ON o.procedure_order_id = rp.procedure_order_id "
    "JOIN patient_data p ON p.pid = o.patient_id WHERE o.activity = 1 AND rp.uuid IS NOT NULL AND p.uuid IS NOT NULL AND p.pid = :pid"
)


def test_notes_match_sql_and_carry_their_text(client, openemr):
    rows = _sql(openemr, NOTES)
    expected = {str(uuid.UUID(bytes=raw)): text for raw, text in rows}
    assert set(expected) == {text_id(n) for n in ("note-progress", "note-untyped", "note-imaging", "note-path")}
    served = [e["resource"] for page in walk(client, "/fhir/DocumentReference?_count=1") for e in page.get("entry", [])]
    assert {r["id"] for r in served} == set(expected)
    for note in served:
        get_fhir_model_class("DocumentReference").model_validate(note)
        assert profile_problems(note, note["meta"]["profile"][0]) == []
        assert base64.b64decode(note["content"][0]["attachment"]["data"]).decode("utf-8") == expected[note["id"]]
    untyped = next(r for r in served if r["id"] == text_id("note-untyped"))
    assert untyped["type"]["coding"][0]["code"] == "UNK" and untyped["type"]["text"] == "evaluation_note"
    progress = get_json(client, f"/fhir/DocumentReference/{text_id('note-progress')}")
    assert progress["author"] == [{"reference": f"Practitioner/{text_id('user-house')}"}]
    assert progress["context"]["encounter"] == [{"reference": f"Encounter/{text_id('enc-1')}"}]


def test_note_searches(client):
    pid1, pid2 = text_id("pat-jane"), text_id("pat-john")
    assert _ids(client, f"/fhir/DocumentReference?patient={pid1}") == {text_id("note-progress"), text_id("note-imaging")}
    assert _ids(client, f"/fhir/DocumentReference?patient={pid1}&type={q('http://loinc.org|11506-3')}") == {text_id("note-progress")}
    assert _ids(client, f"/fhir/DocumentReference?patient={pid2}&type={q('http://loinc.org|11506-3')}") == set()
    assert _ids(client, f"/fhir/DocumentReference?patient={pid2}&category=clinical-note&date=2024-03-01") == {
        text_id("note-untyped"),
        text_id("note-path"),
    }
    assert _ids(client, f"/fhir/DocumentReference/$docref?patient={pid1}") == {text_id("note-progress"), text_id("note-imaging")}


def test_report_notes_are_diagnostic_reports_beside_the_labs(client, openemr):
    pid1, pid2 = text_id("pat-jane"), text_id("pat-john")
    imaging, pathology = text_id("note-imaging"), text_id("note-path")
    report = get_json(client, f"/fhir/DiagnosticReport/{imaging}")
    get_fhir_model_class("DiagnosticReport").model_validate(report)
    assert report["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-note"]
    assert profile_problems(report, report["meta"]["profile"][0]) == []
    assert report["category"][0]["coding"] == [{"system": "http://loinc.org", "code": "LP29684-5", "display": "Radiology"}]
    assert report["code"]["coding"][0]["code"] == "18748-4" and report["performer"] == [
        {"reference": f"Practitioner/{text_id('user-house')}"}
    ]
    assert base64.b64decode(report["presentedForm"][0]["data"]).decode("utf-8") == "CXR PA & LAT: no acute process."
    labs = {str(uuid.UUID(bytes=row[0])) for row in _sql(openemr, LABS, pid=1)}
    assert labs and _ids(client, f"/fhir/DiagnosticReport?patient={pid1}") == labs | {imaging}
    assert _ids(client, f"/fhir/DiagnosticReport?patient={pid1}&category={q('http://terminology.hl7.org/CodeSystem/v2-0074|LAB')}") == labs
    assert _ids(client, f"/fhir/DiagnosticReport?patient={pid1}&category={q('http://loinc.org|LP29684-5')}&date=ge2024-01-01") == {imaging}
    assert _ids(client, f"/fhir/DiagnosticReport?patient={pid1}&category=LP29684-5&date=lt2024-01-01") == set()
    assert _ids(client, f"/fhir/DiagnosticReport?patient={pid2}&code={q('http://loinc.org|11526-1')}") == {pathology}
    assert _ids(client, f"/fhir/DiagnosticReport?patient={pid2}&category=LP29708-2") == set()  # the cardiology note was deleted
    assert client.get(f"/fhir/DiagnosticReport/{text_id('note-progress')}").status_code == 404  # a progress note is no report


def test_devices(client, openemr):
    rows = _sql(openemr, "SELECT uuid FROM lists WHERE type = 'medical_device' AND uuid IS NOT NULL")
    served = {e["resource"]["id"]: e["resource"] for page in walk(client, "/fhir/Device?_count=2") for e in page.get("entry", [])}
    assert set(served) == {str(uuid.UUID(bytes=row[0])) for row in rows}
    for device in served.values():
        get_fhir_model_class("Device").model_validate(device)
        assert profile_problems(device, device["meta"]["profile"][0]) == []
    pacer = served[text_id("dev-pacer")]
    assert pacer["udiCarrier"][0]["deviceIdentifier"] == "00643169007222"
    assert (pacer["lotNumber"], pacer["serialNumber"], pacer["expirationDate"], pacer["status"]) == ("A1234", "SN999", "2026-01", "active")
    assert served[text_id("dev-hip")]["status"] == "inactive" and "udiCarrier" not in served[text_id("dev-hip")]
    assert served[text_id("dev-zero")]["status"] == "active"  # a zero end date is no end
    assert _ids(client, f"/fhir/Device?patient={text_id('pat-jane')}&type={q('http://snomed.info/sct|14106009')}") == {text_id("dev-pacer")}
    assert _ids(client, "/fhir/Device?status=inactive") == {text_id("dev-hip")}


COVERAGE = (
    "SELECT d.uuid, d.policy_number FROM insurance_data d JOIN patient_data p ON p.pid = d.pid "
    "JOIN insurance_companies ic ON ic.id = d.provider "
    "WHERE d.uuid IS NOT NULL AND p.uuid IS NOT NULL AND ic.uuid IS NOT NULL"
)


def test_coverage_matches_sql_and_claims_the_profile_truthfully(client, openemr):
    expected = {str(uuid.UUID(bytes=raw)): policy for raw, policy in _sql(openemr, COVERAGE)}
    assert set(expected) == {text_id(n) for n in ("cov-jane-1", "cov-jane-2", "cov-john-1", "cov-kim-1")}
    served = {e["resource"]["id"]: e["resource"] for page in walk(client, "/fhir/Coverage?_count=1") for e in page.get("entry", [])}
    assert set(served) == set(expected)
    for coverage in served.values():
        get_fhir_model_class("Coverage").model_validate(coverage)
        assert coverage.get("subscriberId") == (expected[coverage["id"]] or None)
        for profile in coverage.get("meta", {}).get("profile", []):
            assert profile_problems(coverage, profile) == []
    assert "meta" not in served[text_id("cov-kim-1")]  # no member id, no relationship: no claim
    jane = served[text_id("cov-jane-1")]
    assert jane["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage"]
    assert jane["payor"] == [{"reference": f"Organization/{text_id('ins-acme')}", "display": "Acme Health"}]
    assert jane["type"] == {
        "coding": [{"system": "urn:oid:2.16.840.1.113883.3.221.5", "code": "5"}],
        "text": "Preferred Provider Organization (PPO)",
    }
    assert jane["relationship"]["coding"][0]["code"] == "self" and jane["order"] == 1 and jane["status"] == "active"
    assert [(c["type"]["coding"][0]["code"], c["value"]) for c in jane["class"]] == [("group", "GRP-77"), ("plan", "Gold PPO")]
    ended = served[text_id("cov-jane-2")]
    assert ended["period"] == {"start": "2020-01-01", "end": "2022-12-31"} and ended["order"] == 2
    assert [c["type"]["coding"][0]["code"] for c in ended.get("class", [])] == []  # no group or plan recorded
    assert "type" not in served[text_id("cov-john-1")]  # its payer records no type


def test_coverage_searches_and_payers(client, openemr):
    for pid, name in [(1, "pat-jane"), (2, "pat-john"), (5, "pat-zoe")]:
        rows = _sql(openemr, COVERAGE + " AND d.pid = :pid", pid=pid)
        expected = {str(uuid.UUID(bytes=row[0])) for row in rows}
        assert _ids(client, f"/fhir/Coverage?patient={text_id(name)}&_count=1") == expected
        assert _ids(client, f"/fhir/Coverage?beneficiary=Patient/{text_id(name)}") == expected
    assert _ids(client, f"/fhir/Coverage?patient={text_id('pat-zoe')}") == set()  # its payer has no uuid yet
    assert _ids(client, f"/fhir/Coverage?payor={text_id('ins-medicare')}") == {text_id("cov-jane-2")}
    payer = get_json(client, f"/fhir/Organization/{text_id('ins-acme')}")
    assert payer["name"] == "Acme Health" and payer["type"][0]["coding"][0]["code"] == "pay" and payer["active"] is True
    assert profile_problems(payer, payer["meta"]["profile"][0]) == []
    assert get_json(client, f"/fhir/Organization/{text_id('ins-closed')}")["active"] is False
    assert _ids(client, "/fhir/Organization?name=Acme") == {text_id("ins-acme")}


OCCUPATIONS = (
    "SELECT p.uuid, p.occupation, p.industry FROM patient_data p "
    "WHERE p.uuid IS NOT NULL AND p.occupation IS NOT NULL AND p.occupation != ''"
)
US_CORE_OCCUPATION = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-occupation"


def test_occupation_is_served_as_typed_with_its_industry(client, openemr):
    rows = {str(uuid.UUID(bytes=raw)): (occupation, industry) for raw, occupation, industry in _sql(openemr, OCCUPATIONS)}
    assert set(rows) == {text_id("pat-jane"), text_id("pat-john")}  # Kim's is empty, the fourth patient has no uuid
    served = {
        r["subject"]["reference"].removeprefix("Patient/"): r
        for page in walk(client, f"/fhir/Observation?code={q('http://loinc.org|11341-5')}&_count=1")
        for e in page.get("entry", [])
        if (r := e["resource"])
    }
    assert set(served) == set(rows)
    for pid, observation in served.items():
        get_fhir_model_class("Observation").model_validate(observation)
        assert observation["id"] == f"{pid}-occupation" and observation["meta"]["profile"] == [US_CORE_OCCUPATION]
        assert profile_problems(observation, US_CORE_OCCUPATION) == []
        assert observation["status"] == "final" and observation["category"][0]["coding"][0]["code"] == "social-history"
        occupation, industry = rows[pid]
        assert observation["valueCodeableConcept"] == {"text": occupation}  # free text: no coding is invented
        components = [(c["code"]["coding"][0]["code"], c["valueCodeableConcept"]) for c in observation.get("component", [])]
        assert components == ([("86188-0", {"text": industry})] if industry else [])
        assert "effectiveDateTime" not in observation and "effectivePeriod" not in observation  # OpenEMR keeps no date for it
    jane, kim = text_id("pat-jane"), text_id("pat-kim")
    assert _ids(client, f"/fhir/Observation?patient={jane}&category=social-history") == {f"{jane}-occupation"}
    assert _ids(client, f"/fhir/Observation?patient={jane}&code={q('http://loinc.org|11341-5')}") == {f"{jane}-occupation"}
    assert _ids(client, f"/fhir/Observation?patient={kim}&category=social-history") == set()
    assert _ids(client, f"/fhir/Observation?patient={jane}&category=social-history&date=ge2000") == set()  # no date to match
    assert f"{jane}-occupation" not in _ids(client, f"/fhir/Observation?patient={jane}&category=laboratory")
    assert get_json(client, f"/fhir/Observation/{jane}-occupation")["valueCodeableConcept"]["text"] == "Registered nurse"
