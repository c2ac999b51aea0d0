"""The committed OpenAPI document is what the app serves; regenerate with the command below when it changes."""

from __future__ import annotations

import json
from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "fhir-facade.openapi.json"
REGENERATE = "fhir-facade openapi --out openapi/fhir-facade.openapi.json"


def test_committed_openapi_is_current(client):
    served = client.get("/fhir/openapi.json").get_json()
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert served == committed, f"openapi/ is stale: run `{REGENERATE}`"


def test_openapi_lists_every_search_parameter(client, app):
    document = client.get("/fhir/openapi.json").get_json()
    adapter = app.extensions["fhir_facade"].adapter
    for resource_type in adapter.resource_types():
        documented = {p["name"] for p in document["paths"][f"/fhir/{resource_type}"]["get"]["parameters"]}
        assert set(adapter.search_params(resource_type)) <= documented
        assert f"/fhir/{resource_type}/{{resource_id}}" in document["paths"]
        assert "post" in document["paths"][f"/fhir/{resource_type}/_search"]
