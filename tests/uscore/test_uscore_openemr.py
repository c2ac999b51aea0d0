"""The new types in the OpenEMR mapping: clinical notes (form_clinical_notes) and implanted devices
(lists of type medical_device), from OpenEMR's real DDL in MariaDB, checked against SQL."""

from __future__ import annotations

import base64
import uuid

import pytest
import sqlalchemy as sa
from fhir.resources.R4B import get_fhir_model_class
from uscore_profiles import profile_problems

from support.fhir_client import get_json, q, walk
from support.openemr_fixture import text_id

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def client(openemr_client):
    return openemr_client


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


# Ordered tests and procedures: one ServiceRequest per order line of an active order.
ORDERS = (
    "SELECT CONCAT(oc.procedure_order_id, '-', oc.procedure_order_seq) FROM procedure_order_code oc "
    "JOIN procedure_order o ON o.procedure_order_id = oc.procedure_order_id JOIN patient_data p ON p.pid = o.patient_id "
    "WHERE o.activity = 1 AND p.uuid IS NOT NULL AND p.uuid <> REPEAT(CHAR(0), 16)"
)
SNOMED_SR, CPT = "http://snomed.info/sct", "http://www.ama-assn.org/go/cpt"


def _orders(openemr, where: str = "1 = 1", **params) -> set[str]:
    return {row[0] for row in _sql(openemr, f"{ORDERS} AND {where}", **params)}


def test_service_requests_match_sql_and_meet_the_profile(client, openemr):
    expected = _orders(openemr)
    assert {"10-1", "10-2", "2-1"} <= expected and "17-1" not in expected and "18-1" not in expected  # deleted; patient without uuid
    served = {e["resource"]["id"]: e["resource"] for page in walk(client, "/fhir/ServiceRequest?_count=3") for e in page.get("entry", [])}
    assert set(served) == expected
    for request in served.values():
        get_fhir_model_class("ServiceRequest").model_validate(request)
        assert request["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest"]
        assert profile_problems(request, request["meta"]["profile"][0]) == []
    a1c = served["10-2"]
    assert (a1c["status"], a1c["intent"], a1c["priority"], a1c["authoredOn"]) == (
        "completed",
        "order",
        "routine",
        "2024-01-05T08:00:00+00:00",
    )
    assert a1c["category"] == [{"coding": [{"system": SNOMED_SR, "code": "108252007", "display": "Laboratory procedure"}]}]
    assert a1c["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "4548-4",
        "display": "Hemoglobin A1c/Hemoglobin.total in Blood",
    }
    assert a1c["subject"] == {"reference": f"Patient/{text_id('pat-jane')}"} and a1c["encounter"] == {
        "reference": f"Encounter/{text_id('enc-1')}"
    }
    assert a1c["requester"] == {"reference": f"Practitioner/{text_id('user-house')}"}
    # one reason per diagnosis, with the system its code type names; the fifth and later share the last
    assert [[(c.get("system"), c["code"]) for c in r["coding"]] for r in a1c["reasonCode"]] == [
        [("http://hl7.org/fhir/sid/icd-10-cm", "E11.9")],
        [("http://hl7.org/fhir/sid/icd-10-cm", "I10")],
        [(SNOMED_SR, "44054006")],
        [("http://hl7.org/fhir/sid/icd-10-cm", "Z00.00"), (None, "X1")],
    ]
    # the compendium entry of the order's own lab gives the standard code (another lab's, or a group row, does not)
    cpt = {i: [c["code"] for c in served[i]["code"]["coding"] if c["system"] == CPT] for i in ("11-1", "19-1")}
    assert cpt == {"11-1": ["71046"], "19-1": ["71045"]}
    everything = [e["resource"]["id"] for e in get_json(client, "/fhir/ServiceRequest?_count=100")["entry"]]
    assert sorted(everything) == sorted(expected)  # one page: no order line twice
    assert "requester" not in served["11-1"]  # the ordering user has no NPI
    assert (served["11-1"]["status"], served["11-1"]["priority"]) == ("active", "urgent")
    echo = served["12-1"]
    assert echo["code"]["text"] == "Echocardiogram" and "encounter" not in echo and echo["intent"] == "plan"
    assert served["13-1"]["status"] == "revoked" and served["13-1"]["code"]["coding"][1] == {"system": SNOMED_SR, "code": "73761001"}
    assert served["14-1"]["status"] == "active" and "authoredOn" not in served["14-1"]  # no status yet; no order date
    odd = served["15-1"]
    assert (odd["status"], odd["intent"], "category" in odd) == ("unknown", "order", False)
    assert get_json(client, "/fhir/ServiceRequest/10-2") == a1c
    for missing in ("17-1", "10-3", "010-2", "10-02", "10"):
        assert client.get(f"/fhir/ServiceRequest/{missing}").status_code == 404


SERVICE_REQUEST_SEARCHES = [
    # (the search after patient=<jane>, SQL condition)
    ("", "1 = 1"),
    (f"category={q(SNOMED_SR + '|108252007')}", "o.procedure_order_type = 'laboratory_test'"),
    (
        f"category={q(SNOMED_SR + '|363679005')}&authored=ge2024-01-01",
        "o.procedure_order_type = 'imaging' AND o.date_ordered >= '2024-01-01'",
    ),
    (
        f"category={q(SNOMED_SR + '|108252007')}&authored=lt2024-03-01",
        "o.procedure_order_type = 'laboratory_test' AND o.date_ordered < '2024-03-01'",
    ),
    (f"code={q('http://loinc.org|2345-7')}", "BINARY oc.procedure_code = 'GLU'"),
    (f"code={q(CPT + '|71046')}", "oc.procedure_order_id = 11"),
    (f"code={q('urn:fhir-facade:openemr:procedure-code|XR-CHEST')}", "BINARY oc.procedure_code = 'XR-CHEST'"),
    ("code=XR-CHEST", "BINARY oc.procedure_code = 'XR-CHEST'"),  # no system: the lab's code
    ("code=73761001", "oc.procedure_order_id = 13"),  # no system: the compendium's standard code
    ("category=363679005", "o.procedure_order_type = 'imaging'"),
    (f"code={q('http://loinc.org|2345-7')}&authored=ge2024-02-01", "BINARY oc.procedure_code = 'GLU' AND o.date_ordered >= '2024-02-01'"),
    ("status=active", "(o.order_status IN ('pending', 'routed', ''))"),
    ("status=completed,revoked", "o.order_status IN ('complete', 'canceled')"),
    ("status=unknown", "o.order_status NOT IN ('pending', 'routed', 'complete', 'canceled', '')"),
    ("intent=plan,proposal", "o.order_intent IN ('plan', 'proposal')"),
    (f"encounter={text_id('enc-1')}", "o.encounter_id = 100"),
    (f"requester={text_id('user-house')}", "o.provider_id = 1"),
    (
        "_id=10-2,11-1,17-1,99-1",
        "oc.procedure_order_id IN (10, 11) AND CONCAT(oc.procedure_order_id, '-', oc.procedure_order_seq) IN ('10-2', '11-1')",
    ),
]


@pytest.mark.parametrize(("search", "where"), SERVICE_REQUEST_SEARCHES)
def test_service_request_searches_match_sql_over_pages(client, openemr, search, where):
    jane = text_id("pat-jane")
    expected = _orders(openemr, f"p.pid = 1 AND {where}")
    assert expected, "the fixture has rows for this search"
    url = f"/fhir/ServiceRequest?patient={jane}&{search}&_count=1".replace("&&", "&")
    pages = walk(client, url)
    found = [e["resource"]["id"] for page in pages for e in page.get("entry", []) if e["search"]["mode"] == "match"]
    assert len(found) == len(set(found)) and set(found) == expected
    assert len(pages) >= len(expected)  # one per page
    if search.startswith(("category", "code", "status")):  # the SHALL pairs: the same search by another patient finds only theirs
        john = _orders(openemr, f"p.pid = 2 AND {where}")
        assert _ids(client, url.replace(jane, text_id("pat-john"))) == john


def test_service_requests_sorted_by_authored(client):
    jane = text_id("pat-jane")
    newest_first = [e["resource"] for page in walk(client, f"/fhir/ServiceRequest?patient={jane}&_count=2") for e in page["entry"]]
    dates = [r["authoredOn"] for r in newest_first if "authoredOn" in r]
    assert dates == sorted(dates, reverse=True) and len(newest_first) == 9
    oldest_first = [e["resource"] for e in get_json(client, f"/fhir/ServiceRequest?patient={jane}&_sort=authored&_count=20")["entry"]]
    assert next(r["id"] for r in oldest_first if "authoredOn" in r) == "13-1" and len(oldest_first) == 9


def test_lab_reports_claim_us_core_lab_and_point_at_their_order(client, openemr):
    reports = {str(uuid.UUID(bytes=row[0])) for row in _sql(openemr, LABS.replace(" AND p.pid = :pid", ""))}
    served = {
        e["resource"]["id"]: e["resource"] for page in walk(client, "/fhir/DiagnosticReport?category=LAB&_count=1") for e in page["entry"]
    }
    assert set(served) == reports and text_id("rep-undated") in reports
    for report in served.values():
        assert report["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab"]
        assert profile_problems(report, report["meta"]["profile"][0]) == []
        order = get_json(client, f"/fhir/{report['basedOn'][0]['reference']}")
        assert order["subject"] == report["subject"] and order["code"]["coding"][0] == report["code"]["coding"][0]
    undated = served[text_id("rep-undated")]
    assert "effectiveDateTime" not in undated and undated["_effectiveDateTime"]["extension"][0]["valueCode"] == "unknown"
    assert undated["basedOn"] == [{"reference": "ServiceRequest/20-1"}] and undated["status"] == "registered"
    assert "_effectiveDateTime" not in served[text_id("rep-1")]


def test_capability_statement_lists_service_request_with_the_us_core_searches(client):
    listed = {r["type"]: r for r in get_json(client, "/fhir/metadata")["rest"][0]["resource"]}
    entry = listed["ServiceRequest"]
    assert entry["supportedProfile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest"]
    assert {"patient", "_id", "category", "code", "authored", "status"} <= {p["name"] for p in entry["searchParam"]}
    combinations = [
        {e["valueString"] for e in x["extension"] if e["url"] == "required"}
        for x in entry.get("extension", [])
        if x["url"].endswith("capabilitystatement-search-parameter-combination")
    ]
    for shall in ({"patient", "category"}, {"patient", "code"}, {"patient", "category", "authored"}):
        assert shall in combinations, shall
    assert "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab" in listed["DiagnosticReport"]["supportedProfile"]


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
