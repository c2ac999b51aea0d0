"""Every resource of the new types, over the whole demo database: valid FHIR R4 (fhir.resources R4B),
and a US Core 6.1 claim in meta.profile only where the official profile's snapshot holds."""

from __future__ import annotations

import base64

import pytest
from fhir.resources.R4B import get_fhir_model_class
from uscore_helpers import NEW_TYPES, sql_ids
from uscore_profiles import US_CORE, profile_problems

from support.demo_sql import RECORD_TYPES
from support.fhir_client import get_json, walk

# The profiles' invariants a missing legacy value could break.
INVARIANTS = {
    "DocumentReference": lambda r: all("data" in c["attachment"] or "url" in c["attachment"] for c in r["content"]),  # us-core-6
    "Coverage": lambda r: (
        "subscriberId" in r or any(i.get("type", {}).get("coding", [{}])[0].get("code") == "MB" for i in r.get("identifier", []))
    ),
    "RelatedPerson": lambda r: "name" in r or "relationship" in r,  # us-core-14
    "MedicationDispense": lambda r: r["status"] != "completed" or "whenHandedOver" in r,  # us-core-20
    "PractitionerRole": lambda r: "telecom" in r or "endpoint" in r,  # pd-1
}


@pytest.fixture(scope="module")
def everything(app) -> dict[str, list[dict]]:
    client = app.test_client()
    found = {}
    for resource_type in NEW_TYPES:
        pages = walk(client, f"/fhir/{resource_type}?_count=1000")
        found[resource_type] = [e["resource"] for b in pages for e in b.get("entry", [])]
    return found


@pytest.mark.parametrize("resource_type", NEW_TYPES)
def test_every_resource_is_valid_and_meets_what_it_claims(everything, raw_db, resource_type):
    resources = everything[resource_type]
    if resource_type in RECORD_TYPES:
        assert {r["id"] for r in resources} == sql_ids(raw_db, resource_type)
    model = get_fhir_model_class(resource_type)
    claimed = 0
    for resource in resources:
        model.model_validate(resource)
        for url in resource.get("meta", {}).get("profile", []):
            assert url.startswith(US_CORE)
            assert profile_problems(resource, url) == [], (resource["id"], url)
            assert INVARIANTS.get(resource_type, lambda r: True)(resource), resource["id"]
            claimed += 1
    assert claimed >= 0.95 * len(resources)  # nearly every row meets its profile


def test_coverage_without_a_member_id_claims_no_profile(everything, raw_db):
    missing = {r[0] for r in raw_db.execute("SELECT cov_guid FROM ins_cov WHERE member_no IS NULL AND del_flg <> 'Y'")}
    served = {r["id"]: r for r in everything["Coverage"]}
    assert missing & set(served)
    for guid in missing & set(served):
        assert not served[guid].get("meta", {}).get("profile")


def test_the_checker_finds_what_is_missing(everything):
    """The profile check itself can fail: a note without its subject, a plan without its category."""
    note = dict(everything["DocumentReference"][0])
    del note["subject"]
    assert profile_problems(note, US_CORE + "us-core-documentreference") == ["DocumentReference.subject"]
    plan = dict(everything["CarePlan"][0], category=[{"text": "plan"}])
    assert "CarePlan.category:AssessPlan" in profile_problems(plan, US_CORE + "us-core-careplan")


def _plain(body: str) -> str:
    """The note store's escapes, undone by hand (HL7 v2: \\.br\\ line break, \\T\\ ampersand…)."""
    for escape, char in (("\\.br\\", "\n"), ("\\T\\", "&"), ("\\F\\", "|"), ("\\S\\", "^"), ("\\E\\", "\\")):
        body = body.replace(escape, char)
    return body


def test_note_text_is_the_legacy_body_decoded(client, raw_db):
    rows = raw_db.execute(
        "SELECT h.note_guid, t.note_body FROM note_hdr h JOIN note_txt t ON t.note_id = h.note_id "
        "WHERE h.del_flg <> 'Y' AND t.note_body LIKE '%\\T\\%' ORDER BY h.note_id LIMIT 5"
    ).fetchall()
    assert rows
    for guid, body in rows:
        attachment = get_json(client, f"/fhir/DocumentReference/{guid}")["content"][0]["attachment"]
        text = base64.b64decode(attachment["data"]).decode("utf-8")
        assert text == _plain(body) and "&" in text and "\\" not in text
        assert attachment["contentType"].startswith("text/plain")


def test_care_plan_narrative_is_the_plan_text(everything, raw_db):
    plan = everything["CarePlan"][0]
    text = raw_db.execute("SELECT plan_txt FROM care_plan WHERE cp_guid = ?", (plan["id"],)).fetchone()[0]
    assert plan["text"]["status"] == "additional"
    for line in text.split("~"):
        assert f"<p>{line.replace('&', '&amp;')}</p>" in plan["text"]["div"]


def test_device_udi_parts(everything, raw_db):
    with_udi = [d for d in everything["Device"] if d.get("udiCarrier")]
    assert with_udi and len(with_udi) < len(everything["Device"])  # some implants were logged without one
    for device in with_udi:
        hrf = raw_db.execute("SELECT udi_txt FROM implant WHERE imp_guid = ?", (device["id"],)).fetchone()[0]
        assert device["udiCarrier"][0]["carrierHRF"] == hrf
        assert f"(01){device['udiCarrier'][0]['deviceIdentifier']}(17)" in hrf
        assert f"(10){device['lotNumber']}(21){device['serialNumber']}" in hrf
        assert hrf.split("(17)")[1][:6] == device["expirationDate"][2:].replace("-", "")
