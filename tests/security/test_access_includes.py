"""Includes and $everything under a SMART token: every lookup goes through the same narrowed
query path, so a patient/ token never pulls in another patient's resources, a type the token
lacks is left out of the includes, and $everything needs the Patient itself. Checked against SQL."""

from __future__ import annotations

import pytest

from facade.core.includes import MAX_REVINCLUDES_PER_PAGE
from support.demo_sql import (
    compartment_ids_of,
    observation_ids_of,
    referenced_outside_compartment,
)
from support.smart_tokens import bearer


@pytest.fixture(scope="module")
def patients(raw_db):
    """Two live patients with observations, prescriptions and encounters (P's record fits in one
    capped _revinclude page)."""
    rows = raw_db.execute(
        "SELECT p.pt_guid FROM pt_master p WHERE p.del_flg <> 'Y' AND p.merged_to_seq IS NULL "
        "AND EXISTS (SELECT 1 FROM lab_result r WHERE r.pt_seq = p.pt_seq AND r.del_flg <> 'Y') "
        "AND EXISTS (SELECT 1 FROM rx_order x WHERE x.pt_seq = p.pt_seq AND x.del_flg <> 'Y' AND x.med_cd IS NOT NULL) "
        "AND EXISTS (SELECT 1 FROM enc_visit e WHERE e.pt_seq = p.pt_seq AND e.del_flg <> 'Y') "
        "AND (SELECT count(*) FROM lab_result r WHERE r.pt_seq = p.pt_seq) < 100 ORDER BY p.pt_seq LIMIT 2"
    ).fetchall()
    return rows[0][0], rows[1][0]


def _pages(client, token: str, path: str) -> list[dict]:
    pages, url = [], path
    while url:
        response = client.get(url.replace("http://testserver", ""), headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        pages.append(response.get_json())
        url = next((link["url"] for link in pages[-1]["link"] if link["relation"] == "next"), None)
        assert len(pages) < 500, "runaway paging"
    return pages


def _ids(pages: list[dict], mode: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for bundle in pages:
        for entry in bundle.get("entry", []):
            if entry["search"]["mode"] == mode:
                found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"]["id"])
    return found


def test_include_of_the_patient_is_only_the_tokens_patient(client, mint, raw_db, patients):
    p, _q = patients
    token = mint.token("launch/patient patient/*.rs", patient=p)
    pages = _pages(client, token, "/fhir/Observation?_include=Observation:patient&_count=10")
    assert len(pages) > 1
    assert set(_ids(pages, "match")["Observation"]) == observation_ids_of(raw_db, [p])
    for bundle in pages:  # each page includes the one patient its observations point at
        assert _ids([bundle], "include") == {"Patient": [p]}


def test_revincludes_hold_only_the_tokens_patients_resources(client, mint, raw_db, patients):
    p, _q = patients
    token = mint.token("launch/patient patient/*.rs", patient=p)
    record = compartment_ids_of(raw_db, [p])
    assert len(record["Observation"]) < MAX_REVINCLUDES_PER_PAGE  # nothing is cut by the cap
    pages = _pages(client, token, "/fhir/Patient?_revinclude=Observation:patient&_revinclude=Provenance:patient&_count=50")
    assert _ids(pages, "match") == {"Patient": [p]}
    included = _ids(pages, "include")
    assert {t: set(ids) for t, ids in included.items()} == {t: record[t] for t in ("Observation", "Provenance")}
    assert all(len(ids) == len(set(ids)) for ids in included.values())


def test_revinclude_of_any_type_reference_if_advertised(client, mint, raw_db, patients):
    p, _q = patients
    token = mint.token("launch/patient patient/*.rs", patient=p)
    metadata = client.get("/fhir/metadata").get_json()
    patient = next(r for r in metadata["rest"][0]["resource"] if r["type"] == "Patient")
    assert "Provenance:target" in patient.get("searchRevInclude", [])
    pages = _pages(client, token, "/fhir/Patient?_revinclude=Provenance:target&_count=50")
    assert _ids(pages, "include") == {"Provenance": [f"pt-{p}"]}


def test_everything_under_a_patient_token_is_that_patients_record(client, mint, raw_db, patients):
    p, q = patients
    token = mint.token("launch/patient patient/*.rs", patient=p)
    pages = _pages(client, token, f"/fhir/Patient/{p}/$everything?_count=25")
    matches = {t: set(ids) for t, ids in _ids(pages, "match").items()}
    assert matches == compartment_ids_of(raw_db, [p])
    # patient/* is the patient's data, not shared reference data: nothing outside the compartment
    # is granted, so nothing outside it is included (the lookups are left out, not refused).
    assert referenced_outside_compartment(raw_db, p)  # there was something to leave out
    assert _ids(pages, "include") == {}
    response = client.get(f"/fhir/Patient/{q}/$everything", headers=bearer(token))
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_everything_includes_reference_data_the_token_grants(client, mint, raw_db, patients):
    p, _q = patients
    token = mint.token("launch/patient patient/*.rs user/Practitioner.rs user/Medication.rs", patient=p)
    pages = _pages(client, token, f"/fhir/Patient/{p}/$everything?_count=25")
    included = {t: set(ids) for t, ids in _ids(pages, "include").items()}
    outside = referenced_outside_compartment(raw_db, p)
    assert included == {t: outside[t] for t in ("Practitioner", "Medication")}


def test_types_the_token_lacks_are_left_out_of_includes(client, mint, raw_db, patients):
    p, _q = patients
    token = mint.token("launch/patient patient/Observation.rs", patient=p)
    pages = _pages(client, token, "/fhir/Observation?_include=Observation:patient&_count=50")
    assert set(_ids(pages, "match")["Observation"]) == observation_ids_of(raw_db, [p])
    assert _ids(pages, "include") == {}  # no Patient scope: no Patient resources, and no 403
    response = client.get(f"/fhir/Patient/{p}/$everything", headers=bearer(token))
    assert response.status_code == 403
    assert response.get_json()["resourceType"] == "OperationOutcome"
