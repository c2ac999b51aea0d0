"""Access to the new types: a patient/ token reaches its own patient's resources only, a granular
scope narrows them further, and a scope for one type opens no other."""

from __future__ import annotations

import pytest
from uscore_helpers import busiest_for, sql_ids

from support.demo_sql import RECORD_TYPES
from support.fhir_client import link, q
from support.smart_tokens import TokenMint, bearer, secured_app

DOC_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category|clinical-note"


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


@pytest.fixture(scope="module")
def secured(demo_path, state_url, mint):
    return secured_app(demo_path, state_url, mint).test_client()


def _ids(client, url: str, token: str) -> set[str]:
    found: set[str] = set()
    while url:
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
        bundle = response.get_json()
        found |= {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}
        url = link(bundle, "next")
    return found


@pytest.mark.parametrize("resource_type", list(RECORD_TYPES))
def test_patient_token_sees_its_patients_resources_only(secured, raw_db, mint, resource_type):
    patient = busiest_for(raw_db, resource_type)
    other = busiest_for(raw_db, resource_type, "p.pt_guid <> ?", (patient,))
    token = mint.token(f"patient/{resource_type}.rs", patient=patient)
    # No patient parameter: the grant's compartment is the whole answer, over pages.
    assert _ids(secured, f"/fhir/{resource_type}?_count=7", token) == sql_ids(raw_db, resource_type, "p.pt_guid = ?", (patient,))
    assert _ids(secured, f"/fhir/{resource_type}?patient={other}", token) == set()
    foreign = sorted(sql_ids(raw_db, resource_type, "p.pt_guid = ?", (other,)))[0]
    assert secured.get(f"/fhir/{resource_type}/{foreign}", headers=bearer(token)).status_code == 404
    own = sorted(sql_ids(raw_db, resource_type, "p.pt_guid = ?", (patient,)))[0]
    assert secured.get(f"/fhir/{resource_type}/{own}", headers=bearer(token)).status_code == 200


def test_a_scope_for_one_type_opens_no_other(secured, raw_db, mint):
    patient = busiest_for(raw_db, "DocumentReference")
    token = mint.token("patient/Coverage.rs", patient=patient)
    assert secured.get(f"/fhir/DocumentReference?patient={patient}", headers=bearer(token)).status_code == 403
    note = sorted(sql_ids(raw_db, "DocumentReference", "p.pt_guid = ?", (patient,)))[0]
    assert secured.get(f"/fhir/DocumentReference/{note}", headers=bearer(token)).status_code == 403


def test_granular_scope_narrows_notes(secured, raw_db, mint):
    patient = busiest_for(raw_db, "DocumentReference")
    mine = sql_ids(raw_db, "DocumentReference", "p.pt_guid = ?", (patient,))
    by_category = mint.token(f"patient/DocumentReference.rs?category={q(DOC_CATEGORY)}", patient=patient)
    assert _ids(secured, "/fhir/DocumentReference?_count=200", by_category) == mine
    progress = mint.token(f"patient/DocumentReference.rs?type={q('http://loinc.org|11506-3')}", patient=patient)
    expected = sql_ids(raw_db, "DocumentReference", "p.pt_guid = ? AND x.note_typ = 'PN'", (patient,))
    assert expected and expected < mine
    assert _ids(secured, "/fhir/DocumentReference?_count=100", progress) == expected


def test_no_token_no_notes(secured):
    response = secured.get("/fhir/DocumentReference")
    assert response.status_code == 401 and response.get_json()["resourceType"] == "OperationOutcome"


def test_docref_is_narrowed_like_the_search(secured, raw_db, mint):
    patient = busiest_for(raw_db, "DocumentReference")
    other = busiest_for(raw_db, "DocumentReference", "p.pt_guid <> ?", (patient,))
    token = mint.token("patient/DocumentReference.rs", patient=patient)
    current = sql_ids(raw_db, "DocumentReference", "p.pt_guid = ? AND x.sign_stat <> 'X'", (patient,))
    own = _ids(secured, f"/fhir/DocumentReference/$docref?patient={patient}&start=1990&end=2030&_count=500", token)
    assert own and own <= current
    assert _ids(secured, f"/fhir/DocumentReference/$docref?patient={other}", token) == set()
    wrong = mint.token("patient/Coverage.rs", patient=patient)
    assert secured.get(f"/fhir/DocumentReference/$docref?patient={patient}", headers=bearer(wrong)).status_code == 403
