"""Bulk $export on the sandbox, under each shipped policy: the whole demo exported once per policy
(module-scoped), then checked for residual identifiers, references, date shifts against search,
ownership, audiences and the parameters the sandbox refuses."""

from __future__ import annotations

import pytest
from fhir.resources.R4B import get_fhir_model_class

from facade.access.grant import Access
from facade.bulk.jobs import Job
from facade.errors import NotFound
from facade.sandbox.check import check_export
from facade.sandbox.export import PolicyChanged, shaper
from support.bulk_client import download, local, wait
from support.sandbox import SANDBOX
from support.smart_tokens import bearer

EXPORT = "/sandbox/fhir/$export"


def kick_off(client, headers: dict, path: str = EXPORT, prefer: str = "respond-async", **params):
    return client.get(path, query_string=params, headers={**headers, "Accept": "application/fhir+json", "Prefer": prefer})


@pytest.fixture(scope="module")
def sandbox_token(mint) -> str:
    return mint.token("system/*.rs", aud=SANDBOX, sub="lab-1", client_id="lab-1", purpose="readmission model")


@pytest.fixture(scope="module")
def exported(app, sandbox_token):
    """The whole demo, exported once per policy: (status URL, manifest, resources by type)."""
    client = app.test_client()
    started = kick_off(client, bearer(sandbox_token))
    assert started.status_code == 202, started.get_json()
    location = started.headers["Content-Location"]
    done = wait(client, location, sandbox_token, timeout=600)  # the whole demo, on a shared machine
    assert done.status_code == 200, done.get_json()
    manifest = done.get_json()
    found: dict[str, list[dict]] = {}
    for output in manifest["output"]:
        found.setdefault(output["type"], []).extend(download(client, output["url"], sandbox_token))
    return location, manifest, found


def test_the_export_has_no_residual_identifiers(exported, state):
    _, _, found = exported
    report = check_export(state.service, state.sandbox, found)
    assert report.findings == []
    assert report.resources == sum(len(r) for r in found.values()) > 1000
    assert {"Patient", "Observation", "Encounter", "Practitioner"} <= set(found)
    for resource_type, resources in found.items():  # valid R4 resources
        for resource in resources[:20]:
            get_fhir_model_class(resource_type).model_validate(resource)


def test_urls_are_under_the_sandbox_base_and_ids_are_pseudonyms(exported, state, legacy_patient):
    location, manifest, found = exported
    assert location.startswith(f"{SANDBOX}/$export-poll/")
    assert manifest["request"] == f"{SANDBOX}/$export"
    assert manifest["output"] and all(o["url"].startswith(f"{SANDBOX}/$export-file/") for o in manifest["output"])
    patients = {p["id"] for p in found["Patient"]}
    assert legacy_patient not in patients and state.sandbox.deid.pseudonym("Patient", legacy_patient) in patients


def test_references_resolve_inside_the_export(exported, state):
    """Every reference is to an exported resource, but those the legacy data itself leaves
    dangling (a few demo rows name encounters that do not exist): not found there either."""
    _, _, found = exported
    ids = {f"{t}/{r['id']}" for t, resources in found.items() for r in resources}
    references = [ref for resources in found.values() for r in resources for ref in _references(r)]
    assert len(references) > 1000
    dangling = sorted({ref for ref in references if ref not in ids})
    assert len(dangling) < 10
    for reference in dangling:
        resource_type, _, pseudonym = reference.partition("/")
        legacy = state.sandbox.deid.key.reveal(resource_type, pseudonym)
        assert legacy is not None
        with pytest.raises(NotFound):
            state.service.read(resource_type, legacy, Access.unrestricted())


def test_a_patients_resources_are_as_sandbox_search_shows_them(exported, client, sandbox_headers, patient):
    """The same de-identified bytes (so the same date shift) as search, for every type of the patient."""
    _, _, found = exported
    compared = 0
    for resource_type in ("Patient", "Observation", "Condition", "Encounter"):
        query = f"_id={patient}" if resource_type == "Patient" else f"patient={patient}"
        bundle = client.get(f"/sandbox/fhir/{resource_type}?{query}&_count=500", headers=sandbox_headers).get_json()
        searched = {e["resource"]["id"]: e["resource"] for e in bundle.get("entry", ()) if e["search"]["mode"] == "match"}
        assert searched, resource_type
        in_export = {r["id"]: r for r in found[resource_type] if r["id"] in searched}
        assert in_export == searched
        compared += len(searched)
    assert compared > 5


def test_sandbox_metadata_offers_export_and_no_group(client, sandbox_headers):
    statement = client.get("/sandbox/fhir/metadata").get_json()
    assert {"name": "export"}.items() <= statement["rest"][0]["operation"][0].items()
    operations = {t["type"]: [o["name"] for o in t.get("operation", ())] for t in statement["rest"][0]["resource"]}
    assert "export" in operations["Patient"] and "Group" not in operations
    assert client.get("/sandbox/fhir/Group/1/$export", headers=sandbox_headers).status_code == 404


def test_tokens_of_the_other_audience_are_refused(client, exported, sandbox_headers, identified_headers):
    location, manifest, _ = exported
    assert kick_off(client, identified_headers).status_code == 401
    assert client.get(local(location), headers=identified_headers).status_code == 401
    assert client.get(local(manifest["output"][0]["url"]), headers=identified_headers).status_code == 401
    assert kick_off(client, sandbox_headers, "/fhir/$export").status_code == 401
    job = location.rpartition("/")[2]
    assert client.get(f"/fhir/$export-poll/{job}", headers=sandbox_headers).status_code == 401


def test_a_job_is_its_clients_and_the_sandboxes_only(client, exported, mint, identified_headers):
    location, manifest, _ = exported
    other = bearer(mint.token("system/*.rs", aud=SANDBOX, sub="lab-2", client_id="lab-2"))
    assert client.get(local(location), headers=other).status_code == 404
    assert client.get(local(manifest["output"][0]["url"]), headers=other).status_code == 404
    assert client.delete(local(location), headers=other).status_code == 404
    # The same client id on the identified API (a token of its audience) does not find it there.
    job = location.rpartition("/")[2]
    same_client = bearer(mint.token("system/*.rs", sub="lab-1", client_id="lab-1"))
    assert client.get(f"/fhir/$export-poll/{job}", headers=same_client).status_code == 404
    name = manifest["output"][0]["url"].rpartition("/")[2]
    assert client.get(f"/fhir/$export-file/{job}/{name}", headers=same_client).status_code == 404
    # …and an identified job is not served through the sandbox.
    started = kick_off(client, same_client, "/fhir/$export", _type="Patient")
    assert started.status_code == 202
    identified_job = started.headers["Content-Location"].rpartition("/")[2]
    lab1 = bearer(mint.token("system/*.rs", aud=SANDBOX, sub="lab-1", client_id="lab-1"))
    assert client.get(f"/sandbox/fhir/$export-poll/{identified_job}", headers=lab1).status_code == 404
    client.delete(f"/fhir/$export-poll/{identified_job}", headers=same_client)


@pytest.mark.parametrize(
    "params",
    [
        {"_typeFilter": "Patient?name=smith"},
        {"_typeFilter": "Patient?identifier=123"},
        {"_typeFilter": "Observation?patient=Patient/1"},
        {"_typeFilter": "Observation?_id=1"},
        {"_typeFilter": "Observation?date=ge2020-03-04"},
        {"_elements": "name"},
        {"_elements": "Patient.telecom"},
        {"_elements": "Patient.identifier,code"},
        {"_since": "2020-01-01T00:00:00Z"},
        {"_until": "2030-01-01T00:00:00Z"},
        {"_type": "Group"},
        {"_type": "AuditEvent"},
        {"patient": "Patient/1"},
    ],
)
def test_removed_elements_and_hostile_parameters_are_400(client, sandbox_headers, params):
    response = kick_off(client, sandbox_headers, **params)
    assert response.status_code == 400, response.get_json()
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"


def test_patient_takes_pseudonyms_only(client, sandbox_headers, patient, legacy_patient):
    def post(reference: str):
        body = {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"reference": reference}}]}
        headers = {**sandbox_headers, "Prefer": "respond-async", "Content-Type": "application/fhir+json"}
        return client.post("/sandbox/fhir/Patient/$export?_type=Condition", json=body, headers=headers)

    assert post(f"Patient/{legacy_patient}").status_code == 400
    started = post(f"Patient/{patient}")
    assert started.status_code == 202, started.get_json()
    assert client.delete(local(started.headers["Content-Location"]), headers=sandbox_headers).status_code == 202


def test_kept_filters_and_elements_are_accepted(client, sandbox_headers):
    started = kick_off(
        client, sandbox_headers, _type="Observation", _typeFilter="Observation?code=http://loinc.org|8867-4", _elements="code"
    )
    assert started.status_code == 202, started.get_json()
    assert client.delete(local(started.headers["Content-Location"]), headers=sandbox_headers).status_code == 202


def test_every_export_interaction_is_audited_as_sandbox(client, sandbox_headers, state, monkeypatch, policy):
    records: list[dict] = []
    append = state.audit.append
    monkeypatch.setattr(state.audit, "append", lambda record: records.append(record) or append(record))
    started = kick_off(client, sandbox_headers, _type="Location")
    client.get(local(started.headers["Content-Location"]), headers=sandbox_headers)
    kick_off(client, sandbox_headers, _elements="name")
    client.delete(local(started.headers["Content-Location"]), headers=sandbox_headers)
    statuses = [r["status"] for r in records]
    assert statuses[0] == 202 and statuses[1] in (200, 202) and statuses[2:] == [400, 202]
    assert [r["interaction"] for r in records] == ["export", "export-status", "export", "export-cancel"]
    for record in records:
        assert record["sandbox"]["policy"] == policy and record["sandbox"]["purpose"] == "readmission model"
        assert record["client_id"] == "lab-1"


def test_a_sandbox_job_fails_closed_without_its_policy(state):
    job = Job.__new__(Job)
    object.__setattr__(job, "grant", {"enforced": True, "sandbox": "another-policy"})
    with pytest.raises(PolicyChanged):
        shaper(state.sandbox)(job)
    with pytest.raises(PolicyChanged):
        shaper(None)(job)
    object.__setattr__(job, "grant", {"enforced": True})
    assert shaper(state.sandbox)(job) is None


def _references(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) and not node["reference"].startswith("#") else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _references(value)]
    return []


def test_openapi_documents_the_sandbox_export(client):
    paths = client.get("/fhir/openapi.json").get_json()["paths"]
    kickoff = paths["/sandbox/fhir/$export"]["get"]
    names = {p["name"] for p in kickoff["parameters"]}
    assert {"_type", "_typeFilter", "_elements"} <= names and not names & {"_since", "_until"}
    assert "/sandbox/fhir/$export-poll/{job_id}" in paths and "/sandbox/fhir/$export-file/{job_id}/{name}" in paths
    assert not [p for p in paths if p.startswith("/sandbox/fhir/Group")]
