"""HTTP behaviour: media types, errors as OperationOutcomes, handling preferences, CapabilityStatement."""

from __future__ import annotations

import pytest


def first_patient_id(client) -> str:
    return client.get("/fhir/Patient?_count=1").get_json()["entry"][0]["resource"]["id"]


def test_read_returns_the_resource_with_fhir_json(client):
    pid = first_patient_id(client)
    response = client.get(f"/fhir/Patient/{pid}")
    assert response.status_code == 200
    assert response.content_type == "application/fhir+json; charset=utf-8"
    body = response.get_json()
    assert body["resourceType"] == "Patient" and body["id"] == pid


@pytest.mark.parametrize(
    ("headers", "query", "status", "media"),
    [
        ({"Accept": "application/fhir+json"}, "", 200, "application/fhir+json"),
        ({"Accept": "application/json"}, "", 200, "application/json"),
        ({"Accept": "*/*"}, "", 200, "application/fhir+json"),
        ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, "", 200, "application/fhir+json"),
        ({"Accept": "application/fhir+xml"}, "", 406, "application/fhir+json"),
        ({}, "_format=json", 200, "application/fhir+json"),
        ({}, "_format=application/json", 200, "application/json"),
        ({}, "_format=xml", 406, "application/fhir+json"),
    ],
)
def test_content_negotiation(client, headers, query, status, media):
    response = client.get(f"/fhir/metadata?{query}", headers=headers)
    assert response.status_code == status
    assert response.mimetype == media
    if status != 200:
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_pretty_printing(client):
    assert b"\n" in client.get("/fhir/metadata?_pretty=true").data
    assert b"\n" in client.get("/fhir/Patient?_count=1&_pretty=true").data
    assert b"\n" not in client.get("/fhir/Patient?_count=1&_pretty=false").data
    assert b"\n" not in client.get("/fhir/Patient?_count=1").data
    assert b"\n" not in client.get("/fhir/metadata").data


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/fhir/NotAType", 404, "not-found"),
        ("get", "/fhir/NotAType/123", 404, "not-found"),
        ("get", "/fhir/Patient/unknown-id", 404, "not-found"),
        ("get", "/fhir/Observation/unknown-id", 404, "not-found"),
        ("put", "/fhir/Patient/abc", 405, "not-supported"),
        ("delete", "/fhir/Patient/abc", 405, "not-supported"),
        ("get", "/fhir/Patient?_count=abc", 400, "invalid"),
        ("get", "/fhir/Patient?_count=-5", 400, "invalid"),
        ("get", "/fhir/Patient?birthdate=2020-13-01", 400, "invalid"),
        ("get", "/fhir/Patient?birthdate=xx2020", 400, "invalid"),
        ("get", "/fhir/Observation?date=yesterday", 400, "invalid"),
        ("get", "/fhir/Patient?name:fuzzy=smi", 400, "invalid"),
        ("get", "/fhir/Patient?_sort=address", 400, "invalid"),
        ("get", "/fhir/Patient?_total=maybe", 400, "invalid"),
        ("get", "/fhir/Observation?patient=Practitioner/123", 400, "invalid"),
        ("get", "/fhir/Patient?gender=a|b|c", 400, "invalid"),
        ("get", "/fhir/Patient?gender:missing=perhaps", 400, "invalid"),
    ],
)
def test_errors_are_operation_outcomes(client, method, path, status, code):
    response = getattr(client, method)(path)
    assert response.status_code == status, response.data
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_parameter_is_ignored_and_reported(client):
    response = client.get("/fhir/Patient?frobnicate=1&_count=3")
    assert response.status_code == 200
    bundle = response.get_json()
    assert "frobnicate" not in bundle["link"][0]["url"]  # self shows only what was applied
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1 and "frobnicate" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    assert sum(1 for e in bundle["entry"] if e["search"]["mode"] == "match") == 3


def test_strict_handling_rejects_unknown_parameters(client):
    response = client.get("/fhir/Patient?frobnicate=1", headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["code"] == "not-supported"
    assert client.get("/fhir/Patient?frobnicate=1", headers={"Prefer": "handling=lenient"}).status_code == 200


def test_empty_parameter_is_ignored(client):
    assert client.get("/fhir/Patient?name=&_count=2").status_code == 200


def test_post_search_needs_a_form(client):
    response = client.post("/fhir/Patient/_search", data='{"name": "x"}', content_type="application/json")
    assert response.status_code == 415
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_post_search_equals_get(client):
    get = client.get("/fhir/Patient?family=sm&gender=female&_count=50").get_json()
    post = client.post("/fhir/Patient/_search", data={"family": "sm", "gender": "female", "_count": "50"}).get_json()
    assert [e["resource"]["id"] for e in get["entry"]] == [e["resource"]["id"] for e in post["entry"]]
    assert get["link"] == post["link"]


def test_bundle_entries_have_full_urls(client):
    bundle = client.get("/fhir/Patient?_count=2").get_json()
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"http://testserver/fhir/Patient/{entry['resource']['id']}"


def test_capability_statement_says_exactly_what_the_mapping_serves(client, app):
    statement = client.get("/fhir/metadata").get_json()
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    adapter = app.extensions["fhir_facade"].adapter
    # Mapped types, plus the terminology resources served from the mapping's crosswalks
    # (tests/test_terminology_endpoints.py checks those).
    served = [r for r in rest["resource"] if r["type"] not in ("ConceptMap", "CodeSystem", "ValueSet", "AuditEvent")]
    groups = ["Group"] if adapter.groups() else []  # the mapping's groups (tests/bulk)
    assert sorted(r["type"] for r in served) == sorted(adapter.resource_types() + groups)
    for resource in served:
        declared = {p["name"] for p in resource["searchParam"]}
        served_params = app.extensions["fhir_facade"].service.catalogues[resource["type"]]
        assert declared == set(served_params)
        assert {i["code"] for i in resource["interaction"]} == {"read", "search-type"}
        # Every advertised parameter is accepted under strict handling.
        for name in declared:
            response = client.get(f"/fhir/{resource['type']}?{name}:missing=false&_count=1", headers={"Prefer": "handling=strict"})
            assert response.status_code == 200, (resource["type"], name, response.data)


def test_capability_statement_lists_the_audit_trail(client):
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    [audit] = [r for r in rest["resource"] if r["type"] == "AuditEvent"]
    assert {p["name"] for p in audit["searchParam"]} == {"_id", "date", "patient", "agent"}
    assert {i["code"] for i in audit["interaction"]} == {"read", "search-type"}


def test_search_post_path_is_not_a_read(client):
    """``/Patient/_search`` is POST only: GET there is 405, not a read of the id "_search"."""
    response = client.get("/fhir/Patient/_search")
    assert response.status_code == 405 and response.get_json()["resourceType"] == "OperationOutcome"
    assert "GET" not in response.headers["Allow"] and "POST" in response.headers["Allow"]
    assert "GET" not in client.options("/fhir/Patient/_search").headers["Allow"]
    assert client.get("/fhir/Patient/" + "a" * 65).status_code == 404  # longer than a FHIR id
