"""The sandbox endpoint under each shipped policy: audiences, references, dates, paging, counts,
searches on removed elements, the audit trail."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class

from facade.access.grant import Access
from support.sandbox import SANDBOX

STRICT = {"Prefer": "handling=strict"}


def get(client, url: str, headers: dict, **extra):
    return client.get(url.replace("http://testserver", ""), headers={**headers, **extra})


def everything(client, patient: str, headers: dict) -> list[dict]:
    resources, url = [], f"/sandbox/fhir/Patient/{patient}/$everything?_count=100"
    while url:
        bundle = get(client, url, headers).get_json()
        resources += [e["resource"] for e in bundle.get("entry", ()) if e["search"]["mode"] != "outcome"]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return resources


# -- audiences -------------------------------------------------------------------------------


def test_each_api_refuses_the_others_tokens(client, sandbox_headers, identified_headers, patient, legacy_patient):
    assert get(client, f"/sandbox/fhir/Patient/{patient}", sandbox_headers).status_code == 200
    assert get(client, f"/sandbox/fhir/Patient/{patient}", identified_headers).status_code == 401
    assert get(client, f"/fhir/Patient/{legacy_patient}", identified_headers).status_code == 200
    assert get(client, f"/fhir/Patient/{legacy_patient}", sandbox_headers).status_code == 401
    assert get(client, "/sandbox/fhir/Observation", {}).status_code == 401


def test_a_patient_launch_token_is_refused(client, mint, patient, legacy_patient):
    from support.smart_tokens import bearer

    launched = bearer(mint.token("patient/*.rs", patient=legacy_patient, aud=SANDBOX))
    assert get(client, f"/sandbox/fhir/Patient/{patient}", launched).status_code == 403


# -- what is served ----------------------------------------------------------------------------


def test_the_capability_statement_offers_only_what_the_policy_lets_out(client):
    statement = client.get("/sandbox/fhir/metadata").get_json()
    resources = {r["type"]: {p["name"] for p in r.get("searchParam", ())} for r in statement["rest"][0]["resource"]}
    assert "Provenance" not in resources and "AuditEvent" not in resources
    assert resources["Patient"] == {"_id", "gender"}
    assert {"patient", "code", "date"} <= resources["Observation"]
    assert statement["implementation"]["url"] == SANDBOX
    token_url = statement["rest"][0]["security"]["extension"][0]["extension"][1]["valueUri"]
    assert token_url == "http://testserver/fhir/auth/token"
    assert "CodeSystem" not in resources and "ValueSet" not in resources
    get_fhir_model_class("CapabilityStatement").model_validate(statement)


def test_references_resolve_inside_the_sandbox_and_resources_are_valid(client, sandbox_headers, patient):
    resources = everything(client, patient, sandbox_headers)
    assert {r["resourceType"] for r in resources} >= {"Patient", "Observation", "Encounter", "Condition", "MedicationRequest"}
    here = {f"{r['resourceType']}/{r['id']}" for r in resources}
    references = {m.group(1) for m in re.finditer(r'"reference": ?"([^"#]+)"', str(resources).replace("'", '"'))}
    assert references
    for reference in sorted(references - here)[:40]:
        assert get(client, f"/sandbox/fhir/{reference}", sandbox_headers).status_code == 200, reference
    for reference in sorted(references & here)[:5]:
        assert get(client, f"/sandbox/fhir/{reference}", sandbox_headers).status_code == 200, reference
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_the_same_request_gives_the_same_bytes(client, sandbox_headers, patient):
    for url in (
        f"/sandbox/fhir/Patient/{patient}/$everything?_count=30",
        f"/sandbox/fhir/Observation?patient={patient}&_count=5&_include=Observation:patient",
        f"/sandbox/fhir/Patient/{patient}",
    ):
        first, second = get(client, url, sandbox_headers), get(client, url, sandbox_headers)
        assert first.status_code == 200 and first.data == second.data


def test_paging_follows_sealed_cursors(client, sandbox_headers, patient, state, legacy_patient):
    url = f"/sandbox/fhir/Observation?patient={patient}&_count=7"
    ids, pages = [], 0
    while url:
        bundle = get(client, url, sandbox_headers).get_json()
        ids += [e["resource"]["id"] for e in bundle.get("entry", ())]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        if url:
            assert urlsplit(url).path == "/sandbox/fhir/Observation"
            assert legacy_patient not in url
        pages += 1
    legacy = state.service.search("Observation", [("patient", legacy_patient), ("_count", "1000")], "", Access.unrestricted()).body
    assert pages > 1 and len(ids) == len(set(ids)) == len(legacy["entry"])
    forged = get(client, f"/sandbox/fhir/Observation?patient={patient}&_count=7&_cursor=eyJhIjoxfQ", sandbox_headers)
    assert forged.status_code == 400


# -- searches that cannot re-identify --------------------------------------------------------


@pytest.mark.parametrize("query", ["name=Smith", "family=smi", "identifier=MRN0000001", "birthdate=1950", "address=Main"])
def test_parameters_on_removed_elements_are_refused_or_ignored(client, sandbox_headers, query):
    strict = get(client, f"/sandbox/fhir/Patient?{query}", sandbox_headers, **STRICT)
    assert strict.status_code == 400
    value = query.split("=")[1]
    assert value not in strict.get_data(as_text=True)  # the error names the parameter, never the value
    lenient = get(client, f"/sandbox/fhir/Patient?{query}&_count=50", sandbox_headers).get_json()
    plain = get(client, "/sandbox/fhir/Patient?_count=50", sandbox_headers).get_json()
    matches = [e for e in lenient["entry"] if e["search"]["mode"] == "match"]
    assert matches == [e for e in plain["entry"] if e["search"]["mode"] == "match"]  # same rows, same order
    assert "Ignored" in str(lenient["entry"][-1])
    counted = get(client, f"/sandbox/fhir/Patient?{query}&_summary=count", sandbox_headers).get_json()
    assert counted.get("total") == get(client, "/sandbox/fhir/Patient?_summary=count", sandbox_headers).get_json().get("total")


@pytest.mark.parametrize("sort", ["family", "-birthdate", "name"])
def test_sorting_by_removed_elements_is_refused(client, sandbox_headers, sort):
    assert get(client, f"/sandbox/fhir/Patient?_sort={sort}", sandbox_headers).status_code == 400


def test_legacy_ids_find_nothing(client, sandbox_headers, legacy_patient):
    missing = get(client, f"/sandbox/fhir/Patient/{legacy_patient}", sandbox_headers)
    assert missing.status_code == 404
    found = get(client, f"/sandbox/fhir/Observation?patient={legacy_patient}", sandbox_headers).get_json()
    assert "entry" not in found
    assert "entry" not in get(client, f"/sandbox/fhir/Patient?_id={legacy_patient}", sandbox_headers).get_json()


def test_small_counts_are_withheld(client, sandbox_headers, patient, state):
    small = get(client, f"/sandbox/fhir/AllergyIntolerance?patient={patient}&_summary=count", sandbox_headers).get_json()
    assert "total" not in small and "suppressed" in str(small)
    large = get(client, "/sandbox/fhir/Observation?_summary=count", sandbox_headers).get_json()
    assert large["total"] >= state.sandbox.small_cell


def test_date_searches_match_the_dates_shown(client, sandbox_headers, patient, policy):
    record = [r for r in everything(client, patient, sandbox_headers) if r["resourceType"] == "Observation"]
    observations = [r for r in record if "effectiveDateTime" in r]
    jobs = [r["effectivePeriod"] for r in record if "effectivePeriod" in r]  # occupations: a period, searched as one
    shown = observations[len(observations) // 2]["effectiveDateTime"]
    base = f"/sandbox/fhir/Observation?patient={patient}&_count=1000"
    if policy == "safe-harbor":
        assert len(shown) == 4
        assert get(client, f"/sandbox/fhir/Observation?date=ge{shown}-03-01", sandbox_headers).status_code == 400
        assert get(client, f"/sandbox/fhir/Observation?patient={patient}&_sort=date", sandbox_headers).status_code == 400
        same_year = get(client, f"{base}&date={shown}", sandbox_headers).get_json()["entry"]
        inside = sum(1 for p in jobs if p["start"] == p.get("end") == shown)  # a job within that year
        assert same_year and all(e["resource"].get("effectiveDateTime", shown) == shown for e in same_year)
        expected = sum(1 for r in observations if r["effectiveDateTime"] == shown) + inside
        assert len(same_year) == expected
        return
    day = shown[:10]
    assert get(client, f"/sandbox/fhir/Observation?date=ge{day}", sandbox_headers).status_code == 400  # no one patient
    on_day = get(client, f"{base}&date={day}", sandbox_headers).get_json()["entry"]
    assert on_day and all(e["resource"]["effectiveDateTime"].startswith(day) for e in on_day)
    assert len(on_day) == sum(1 for r in observations if r["effectiveDateTime"].startswith(day))
    before = get(client, f"{base}&date=lt{day}", sandbox_headers).get_json().get("entry", [])
    starts = [e["resource"].get("effectiveDateTime") or e["resource"]["effectivePeriod"]["start"] for e in before]
    assert all(start[:10] < day for start in starts)  # a job matches when it began before the day
    assert len(before) == sum(1 for r in observations if r["effectiveDateTime"][:10] < day) + sum(1 for p in jobs if p["start"][:10] < day)
    ordered = get(client, f"{base}&_sort=-date", sandbox_headers).get_json()["entry"]
    dates = [e["resource"]["effectiveDateTime"][:10] for e in ordered if "effectiveDateTime" in e["resource"]]
    assert dates == sorted(dates, reverse=True)


def test_a_patients_dates_move_together(client, sandbox_headers, identified_headers, patient, legacy_patient, policy):
    shown = {f"{r['resourceType']}": r for r in everything(client, patient, sandbox_headers)}
    legacy = get(client, f"/fhir/Patient/{legacy_patient}/$everything?_count=1000", identified_headers).get_json()["entry"]
    originals = {e["resource"]["resourceType"]: e["resource"] for e in legacy if e["search"]["mode"] == "match"}
    offsets = set()
    for resource_type, resource in shown.items():
        for key in ("effectiveDateTime", "authoredOn", "recordedDate", "occurrenceDateTime", "performedDateTime", "birthDate"):
            original = originals.get(resource_type, {}).get(key)
            if isinstance(original, str) and key in resource and originals[resource_type]["id"] and len(original) >= 10:
                if policy == "safe-harbor":
                    assert resource[key] == original[:4] or resource[key] is None
                else:
                    offsets.add((date.fromisoformat(resource[key][:10]) - date.fromisoformat(original[:10])).days)
    if policy == "limited-data-set":
        assert len(offsets) == 1 and 0 not in offsets


# -- the audit trail ---------------------------------------------------------------------------


def test_every_access_is_audited_as_sandbox(client, sandbox_headers, patient, state, monkeypatch, policy):
    records = []
    append = state.audit.append
    monkeypatch.setattr(state.audit, "append", lambda record: records.append(record) or append(record))
    get(client, f"/sandbox/fhir/Patient/{patient}", sandbox_headers)
    get(client, "/sandbox/fhir/Patient?name=x", sandbox_headers, **STRICT)
    get(client, f"/sandbox/fhir/Patient/{patient}", {})
    assert [r["status"] for r in records] == [200, 400, 401]
    for record in records:
        assert record["sandbox"]["policy"] == policy and record["sandbox"]["key_id"] == state.sandbox.key_id
    assert records[0]["sandbox"]["purpose"] == "readmission model" and records[0]["client_id"] == "lab-1"
    assert records[0]["ids"][0].startswith("Patient/") and patient not in records[0]["ids"][0]  # the legacy id, for the record


def test_a_read_answers_exactly_what_everything_and_search_show(client, sandbox_headers, patient):
    """Reads, searches and $everything pass each resource through the same policy: with the whole
    demo's search and $everything output checked (test_residuals.py), reads are too."""
    resources = everything(client, patient, sandbox_headers)
    for resource in resources:
        read = get(client, f"/sandbox/fhir/{resource['resourceType']}/{resource['id']}", sandbox_headers)
        assert read.status_code == 200 and read.get_json() == resource
    searched = get(client, f"/sandbox/fhir/Condition?patient={patient}&_count=1000", sandbox_headers).get_json()["entry"]
    assert [e["resource"] for e in searched] == [r for r in resources if r["resourceType"] == "Condition"]
