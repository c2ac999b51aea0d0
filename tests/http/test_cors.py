"""Browser apps call the FHIR API from their own origin (SMART "Considerations for CORS"; checklist A10, F7)."""

from __future__ import annotations

ORIGIN = {"Origin": "https://growth-chart.app.test"}


def test_metadata_allows_any_origin(client):
    response = client.get("/fhir/metadata", headers=ORIGIN)
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"


def test_preflight_for_a_bearer_search_is_answered_without_a_token(client):
    response = client.options(
        "/fhir/Patient", headers={**ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


def test_errors_are_readable_cross_origin(client):
    response = client.get("/fhir/Patient/does-not-exist", headers=ORIGIN)
    assert response.status_code == 404 and response.headers["Access-Control-Allow-Origin"] == "*"


def test_same_origin_requests_get_no_cors_headers(client):
    assert "Access-Control-Allow-Origin" not in client.get("/fhir/metadata").headers
