"""Patient/{id}/$everything: the patient's compartment, paged statelessly, checked against SQL."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from facade.search.compartment import PATIENT_COMPARTMENT_PARAM
from facade.search.everything import compartment_types
from support.demo_sql import compartment_ids_of, observation_ids_of, referenced_outside_compartment
from support.fhir_client import get_json, link, walk
from support.sql_statements import count_statements

LIVE_PATIENTS = "FROM pt_master p WHERE (p.del_flg IS NULL OR p.del_flg <> 'Y')"
_HAS = "EXISTS (SELECT 1 FROM {0} x WHERE x.pt_seq = p.pt_seq)"
_LABS = "(SELECT count(*) FROM lab_result r WHERE r.pt_seq = p.pt_seq)"


@pytest.fixture(scope="module")
def patient(raw_db) -> str:
    """A patient with a full record (every compartment type, a coded prescription) and the most
    laboratory results among those small enough to walk in pages of 7 (still many pages)."""
    full = " AND ".join(_HAS.format(t) for t in ("proc_log", "immun", "allergy", "soc_hx", "lab_order", "enc_dx"))
    return raw_db.execute(
        f"SELECT p.pt_guid {LIVE_PATIENTS} AND {full} "
        "AND EXISTS (SELECT 1 FROM rx_order x WHERE x.pt_seq = p.pt_seq AND x.med_cd IS NOT NULL) "
        f"AND {_LABS} < 1000 ORDER BY {_LABS} DESC, p.pt_guid LIMIT 1"
    ).fetchone()[0]


def _entries(pages: list[dict], mode: str = "match") -> list[tuple[str, str]]:
    return [(e["resource"]["resourceType"], e["resource"]["id"]) for b in pages for e in b.get("entry", []) if e["search"]["mode"] == mode]


def _by_type(entries: list[tuple[str, str]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for resource_type, resource_id in entries:
        found.setdefault(resource_type, set()).add(resource_id)
    return found


def _outside_types(service) -> set[str]:
    """Served types outside the compartment that compartment types point at."""
    return {
        d.target
        for t in compartment_types(service.catalogues)
        for d in service.catalogues[t].values()
        if d.type == "reference" and d.target in service.catalogues and d.target not in PATIENT_COMPARTMENT_PARAM
    }


@pytest.mark.parametrize("count", [7, 50, 1000])
def test_everything_is_the_patients_whole_compartment_over_pages(client, raw_db, patient, count):
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_count={count}", on_page=Bundle.model_validate)
    entries = _entries(pages)
    assert entries[0] == ("Patient", patient)
    assert len(entries) == len(set(entries))  # nothing twice, across pages
    expected = compartment_ids_of(raw_db, [patient])
    assert len(expected) >= 18 and len(expected["Observation"]) > 50  # (nearly) every compartment type, several pages
    assert _by_type(entries) == expected
    # Types come in a fixed order, each whole before the next (the cursor walks them in turn).
    order = [t for i, (t, _) in enumerate(entries) if i == 0 or entries[i - 1][0] != t]
    assert order == ["Patient", *sorted(set(expected) - {"Patient"})]
    # What the record points at outside the compartment comes along as include entries.
    assert _by_type(_entries(pages, "include")) == referenced_outside_compartment(raw_db, patient)
    assert all(len(_entries([b])) <= count for b in pages)
    if count == 7:
        assert len(pages) > 5 and "$everything" in link(pages[1], "self")


def test_type_filter(client, raw_db, patient):
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_type=Observation&_count=40")
    assert {t for t, _ in _entries(pages)} == {"Observation"}
    assert {i for _, i in _entries(pages)} == observation_ids_of(raw_db, [patient])
    assert not _entries(pages, "include")  # observations point at nothing outside the compartment
    only = _entries(walk(client, f"/fhir/Patient/{patient}/$everything?_type=Patient"))
    assert only == [("Patient", patient)]
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_type=MedicationRequest,Procedure&_count=3")
    expected = compartment_ids_of(raw_db, [patient])
    assert _by_type(_entries(pages)) == {t: expected[t] for t in ("MedicationRequest", "Procedure")}


def test_since_keeps_what_changed_at_or_after(client, raw_db, patient):
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_since=2024-01-01&_type=Observation&_count=30")
    found = {i for _, i in _entries(pages)}
    expected = observation_ids_of(raw_db, [patient], since="20240101000000")
    assert expected and expected < observation_ids_of(raw_db, [patient])  # the filter removes some, keeps some
    assert found == expected
    everything = _by_type(_entries(walk(client, f"/fhir/Patient/{patient}/$everything?_since=2024-01-01&_count=100")))
    assert everything == compartment_ids_of(raw_db, [patient], since="20240101000000")


def test_statements_per_page_do_not_grow_with_the_page(client, app, patient):
    """A page costs at most one statement per type it walks, one lookup per type outside the
    compartment its resources point at, and (after the first page) one check that the patient
    exists: a bound set by the mapping, never by the page size."""
    service = app.extensions["fhir_facade"].service
    adapter = service.adapter
    adapter.bound()
    walked, outside = compartment_types(service.catalogues), _outside_types(service)
    assert len(walked) == 20 and outside == {"Practitioner", "Location", "Organization", "Medication"}
    bound = len(walked) + len(outside) + 1
    for count in (5, 200):
        url, pages, most = f"/fhir/Patient/{patient}/$everything?_count={count}", 0, 0
        while url:
            with count_statements(adapter.engine) as statements:
                bundle = get_json(client, url)
            most, pages, url = max(most, len(statements)), pages + 1, link(bundle, "next")
        assert 2 <= most <= bound, (count, most)
        assert pages > 1  # later pages (cursor plus patient check) were measured at both sizes
    # Exactly: types that point at nothing outside cost one statement each.
    for count in (5, 40):
        with count_statements(adapter.engine) as statements:
            first = get_json(client, f"/fhir/Patient/{patient}/$everything?_count={count}&_type=Patient,Observation")
        assert len(statements) == 2  # Patient, then Observation
        with count_statements(adapter.engine) as statements:
            get_json(client, link(first, "next"))
        assert len(statements) == 2  # Observation from the cursor, and the patient still exists


def test_post_with_parameters_is_the_same_as_get(client, patient):
    get = get_json(client, f"/fhir/Patient/{patient}/$everything?_count=9&_type=Patient,Observation")
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_count", "valueInteger": 9}, {"name": "_type", "valueString": "Patient,Observation"}],
    }
    response = client.post(f"/fhir/Patient/{patient}/$everything", json=body, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200
    assert response.get_json()["entry"] == get["entry"]
    assert client.post(f"/fhir/Patient/{patient}/$everything?_count=9&_type=Patient,Observation").get_json()["entry"] == get["entry"]
    everything = get_json(client, f"/fhir/Patient/{patient}/$everything?_count=9")
    assert client.post(f"/fhir/Patient/{patient}/$everything?_count=9").get_json()["entry"] == everything["entry"]


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
    service = app.extensions["fhir_facade"].service
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
    # The Patient, then each type in order by its compartment parameter until the page is full;
    # then one lookup by id per type outside the compartment that the page points at.
    walked = [(t, names) for t, names in seen if t in PATIENT_COMPARTMENT_PARAM]
    types = compartment_types(service.catalogues)
    assert len(walked) >= 2 and walked == [(t, (PATIENT_COMPARTMENT_PARAM[t],)) for t in types[: len(walked)]]
    lookups = seen[len(walked) :]
    assert all(names == ("_id",) and t in _outside_types(service) for t, names in lookups)
