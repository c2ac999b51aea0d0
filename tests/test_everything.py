"""Patient/{id}/$everything: the patient's compartment, paged statelessly, checked against SQL."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from support.demo_sql import observation_ids_of
from support.fhir_client import get_json, link, walk
from test_sql_statements import count_statements

LIVE_PATIENTS = "FROM pt_master p WHERE (p.del_flg IS NULL OR p.del_flg <> 'Y')"


@pytest.fixture(scope="module")
def patient(raw_db) -> str:
    """A patient with plenty of observations (so several pages)."""
    return raw_db.execute(
        f"SELECT p.pt_guid {LIVE_PATIENTS} ORDER BY (SELECT count(*) FROM lab_result r WHERE r.pt_seq = p.pt_seq) DESC LIMIT 1"
    ).fetchone()[0]


def _entries(pages: list[dict], mode: str = "match") -> list[tuple[str, str]]:
    return [(e["resource"]["resourceType"], e["resource"]["id"]) for b in pages for e in b.get("entry", []) if e["search"]["mode"] == mode]


@pytest.mark.parametrize("count", [7, 50, 1000])
def test_everything_is_the_patient_and_their_observations_over_pages(client, raw_db, patient, count):
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_count={count}", on_page=Bundle.model_validate)
    entries = _entries(pages)
    assert entries[0] == ("Patient", patient)
    observations = [i for t, i in entries if t == "Observation"]
    assert len(observations) == len(set(observations))
    expected = observation_ids_of(raw_db, [patient])
    assert len(expected) > 50 and set(observations) == expected
    assert len(entries) == 1 + len(expected)
    assert all(len(b.get("entry", [])) <= count for b in pages)
    if count == 7:
        assert len(pages) > 5 and "$everything" in link(pages[1], "self")


def test_type_filter(client, raw_db, patient):
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_type=Observation&_count=40")
    assert {t for t, _ in _entries(pages)} == {"Observation"}
    assert {i for _, i in _entries(pages)} == observation_ids_of(raw_db, [patient])
    only = _entries(walk(client, f"/fhir/Patient/{patient}/$everything?_type=Patient"))
    assert only == [("Patient", patient)]


def test_since_keeps_what_changed_at_or_after(client, raw_db, patient):
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_since=2024-01-01&_type=Observation&_count=30")
    found = {i for _, i in _entries(pages)}
    expected = observation_ids_of(raw_db, [patient], since="20240101000000")
    assert expected and expected < observation_ids_of(raw_db, [patient])  # the filter removes some, keeps some
    assert found == expected


def test_statements_per_page_do_not_grow_with_the_page(client, app, patient):
    adapter = app.extensions["fhir_facade"].adapter
    adapter.bound()
    for count in (5, 200):
        url = f"/fhir/Patient/{patient}/$everything?_count={count}"
        with count_statements(adapter.engine) as statements:
            first = get_json(client, url)
        assert len(statements) == 2  # Patient, then Observation
        with count_statements(adapter.engine) as statements:
            get_json(client, link(first, "next"))
        assert len(statements) == 2  # Observation from the cursor, and the patient still exists


def test_post_with_parameters_is_the_same_as_get(client, patient):
    get = get_json(client, f"/fhir/Patient/{patient}/$everything?_count=9&_type=Patient,Observation")
    body = {"resourceType": "Parameters", "parameter": [{"name": "_count", "valueInteger": 9}, {"name": "_type", "valueString": "Patient,Observation"}]}
    response = client.post(f"/fhir/Patient/{patient}/$everything", json=body, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200
    assert response.get_json()["entry"] == get["entry"]
    assert client.post(f"/fhir/Patient/{patient}/$everything?_count=9").get_json()["entry"] == get["entry"]


def test_unknown_patient_is_404(client, patient):
    for url in ("/fhir/Patient/no-such-patient/$everything", "/fhir/Patient/no-such-patient/$everything?_type=Observation"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "query",
    ["_count=0", "_count=x", "_type=Practitioner", "_type=Nonsense", "_since=yesterday", "_cursor=bogus", "_count=5&_cursor=WyJ4IixbMF1d"],
)
def test_bad_parameters_are_400(client, patient, query):
    response = client.get(f"/fhir/Patient/{patient}/$everything?{query}")
    assert response.status_code == 400, query
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_cursor_is_bound_to_its_patient(client, raw_db, patient):
    other = raw_db.execute(f"SELECT p.pt_guid {LIVE_PATIENTS} AND p.pt_guid <> ? LIMIT 1", (patient,)).fetchone()[0]
    cursor = link(get_json(client, f"/fhir/Patient/{patient}/$everything?_count=3"), "next").split("_cursor=")[1]
    assert client.get(f"/fhir/Patient/{other}/$everything?_count=3&_cursor={cursor}").status_code == 400


def test_unknown_parameters_reported_or_strict_400(client, patient):
    bundle = get_json(client, f"/fhir/Patient/{patient}/$everything?start=2020&_count=2")
    assert bundle["entry"][-1]["search"]["mode"] == "outcome" and "start" in bundle["entry"][-1]["resource"]["issue"][0]["diagnostics"]
    assert client.get(f"/fhir/Patient/{patient}/$everything?start=2020", headers={"Prefer": "handling=strict"}).status_code == 400


def test_everything_is_advertised(client):
    statement = get_json(client, "/fhir/metadata")
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"} in patient["operation"]


def test_everything_uses_the_service_query_path(app, client, patient):
    service = app.extensions["fhir_facade"]
    seen = []
    original = service.run

    def spy(request, access, *rest):
        seen.append((request.resource_type, tuple(c.name for c in request.clauses)))
        return original(request, access, *rest)

    service.run = spy
    try:
        get_json(client, f"/fhir/Patient/{patient}/$everything?_count=3")
    finally:
        del service.run
    assert seen == [("Patient", ("_id",)), ("Observation", ("patient",))]
