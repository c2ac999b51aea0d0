"""A real Bulk Data client: smart-fetch (the exporter of the SMART/Cumulus tools) runs ``bulk``
against a live server with SMART Backend Services (private_key_jwt), its default Observation
``_typeFilter`` included; what it downloads equals what search returns."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from support.bulk_client import searched_ids
from support.smart_flow import AssertionSigner, LiveServer, make_app, make_settings, register

# smart-fetch's default filter when it exports Observation (its --no-default-filters turns it off)
# The resource types of US Core 6.1 (its server CapabilityStatement).
US_CORE_TYPES = {
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "Location",
    "Medication",
    "MedicationDispense",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
    "Specimen",
}
DEFAULT_CATEGORIES = "social-history,vital-signs,imaging,laboratory,survey,exam,procedure,therapy,activity"


@pytest.fixture(scope="module")
def live(bulk_demo, tmp_path_factory):
    if shutil.which("smart-fetch") is None:
        pytest.skip("smart-fetch is not installed (pip install -e '.[test]')")
    tmp = tmp_path_factory.mktemp("smart-fetch")
    server = LiveServer(lambda base: make_app(make_settings(bulk_demo, tmp, base_url=base, bulk_dir=str(tmp / "files"))))
    signer = AssertionSigner("RS384")
    registered = register(server.app, "backend", jwks=signer.jwks(), scope="system/*.rs")[0]
    private = {**signer.key.as_dict(private=True), "kid": signer.kid, "alg": "RS384", "key_ops": ["sign"]}
    key_file = tmp / "client.jwks"
    key_file.write_text(json.dumps({"keys": [private]}), encoding="utf-8")
    yield server, registered.client_id, key_file, signer
    server.close()
    server.app.extensions["fhir_facade"].close()


def _token(server, client_id: str, signer: AssertionSigner) -> str:
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", **signer.form(client_id, aud=server.base + "/auth/token")}
    response = server.app.test_client().post("/fhir/auth/token", data=form)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def _downloaded(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in sorted(out.glob("*.ndjson*")):
        if path.name.startswith("log."):
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for line in data.splitlines():
            resource = orjson.loads(line)
            found.setdefault(resource["resourceType"], []).append(resource)
    return found


def _smart_fetch(server, client_id: str, key_file: Path, out: Path, *extra: str) -> dict[str, list[dict]]:
    command = [
        "smart-fetch",
        "bulk",
        "--fhir-url",
        server.base,
        "--smart-client-id",
        client_id,
        "--smart-key",
        str(key_file),
        *extra,
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return _downloaded(out)


def test_smart_fetch_bulk_system_export_equals_search(live, tmp_path):
    server, client_id, key_file, signer = live
    found = _smart_fetch(server, client_id, key_file, tmp_path / "out")  # its default: every type it knows that the server lists
    assert {"Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "Procedure"} <= set(found)
    access = _token(server, client_id, signer)
    client = server.app.test_client()
    for resource_type, exported in found.items():
        query = f"category={DEFAULT_CATEGORIES}" if resource_type == "Observation" else ""
        assert sorted(r["id"] for r in exported) == sorted(searched_ids(client, resource_type, access, query)), resource_type


def test_smart_fetch_group_export(live, tmp_path):
    server, client_id, key_file, signer = live
    found = _smart_fetch(server, client_id, key_file, tmp_path / "out", "--group", "women", "--type", "Patient,Condition")
    access = _token(server, client_id, signer)
    client = server.app.test_client()
    women = searched_ids(client, "Patient", access, "gender=female")
    assert sorted(p["id"] for p in found["Patient"]) == sorted(women)
    expected = [i for p in women for i in searched_ids(client, "Condition", access, f"patient={p}")]
    assert sorted(c["id"] for c in found["Condition"]) == sorted(expected)


def test_smart_fetch_crawl_skips_no_us_core_type(live, tmp_path):
    """smart-fetch's REST crawl (per patient, per type) skips each type the server does not list:
    no US Core type may be among them, and what it saves equals what search returns."""
    server, client_id, key_file, signer = live
    out = tmp_path / "crawl"
    command = ["smart-fetch", "crawl", "--fhir-url", server.base, "--smart-client-id", client_id, "--smart-key", str(key_file), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    skipped = set(re.findall(r"Skipping (\w+) because the server does not support it", done.stdout + done.stderr))
    assert not skipped & US_CORE_TYPES, skipped
    found = _downloaded(out)
    assert {"DocumentReference", "Device", "MedicationDispense", "ServiceRequest", "Specimen"} <= set(found), set(found)
    access = _token(server, client_id, signer)
    client = server.app.test_client()
    for resource_type, saved in found.items():
        query = f"category={DEFAULT_CATEGORIES}" if resource_type == "Observation" else ""
        assert sorted(r["id"] for r in saved) == sorted(searched_ids(client, resource_type, access, query)), resource_type
