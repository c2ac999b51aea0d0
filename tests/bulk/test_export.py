"""Bulk Data $export as a client sees it: kick-off, poll, manifest, files, cancel (checklist O)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from facade.core import groups
from legacy_adapters import sql_adapter
from support.bulk_client import download, export, kick_off, local, resources, searched_ids, token, wait
from support.smart_tokens import bearer
from support.sql_statements import count_statements

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def test_system_export_has_every_type_search_returns(client, mint):
    access = token(mint)
    manifest = export(client, "$export", access)
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["requiresAccessToken"] is True and manifest["request"] == "http://testserver/fhir/$export"
    assert manifest["transactionTime"].endswith("Z") and manifest["error"] == []
    found = resources(client, manifest, access)
    for output in manifest["output"]:
        assert output["url"].startswith("http://testserver/fhir/$export-file/") and output["count"] > 0
    assert "AuditEvent" not in found  # the façade's own records are not clinical data
    for resource_type, exported in found.items():
        ids = [r["id"] for r in exported]
        assert all(r["resourceType"] == resource_type for r in exported)  # one type per file
        assert len(ids) == len(set(ids)), f"{resource_type} has duplicates"
        assert sorted(ids) == sorted(searched_ids(client, resource_type, access)), resource_type
        assert sum(o["count"] for o in manifest["output"] if o["type"] == resource_type) == len(ids)
    for resource_type in ("Patient", "Observation", "Encounter", "Condition", "Practitioner", "Group"):
        assert found.get(resource_type), f"no {resource_type} exported"
        for resource in found[resource_type][:25]:
            get_fhir_model_class(resource_type).model_validate(resource)


def test_kick_off_status_and_files_need_a_token(client, mint):
    assert client.get("/fhir/$export", headers={"Prefer": "respond-async"}).status_code == 401
    assert client.get("/fhir/Patient/$export", headers={"Prefer": "respond-async"}).status_code == 401
    assert client.get("/fhir/Group/women/$export", headers={"Prefer": "respond-async"}).status_code == 401
    access = token(mint)
    manifest = export(client, "$export", access, _type="Patient")
    url = local(manifest["output"][0]["url"])
    unauthorized = client.get(url)
    assert unauthorized.status_code == 401 and unauthorized.get_json()["resourceType"] == "OperationOutcome"


def test_another_client_finds_no_job_and_no_file(client, mint):
    mine = token(mint, client_id="exporter")
    theirs = token(mint, client_id="someone-else")
    started = kick_off(client, "$export", mine, _type="Patient")
    location = local(started.headers["Content-Location"])
    manifest = wait(client, location, mine).get_json()
    url = local(manifest["output"][0]["url"])
    for method, target in (("GET", location), ("DELETE", location), ("GET", url)):
        response = client.open(target, method=method, headers=bearer(theirs))
        assert response.status_code == 404, (method, target)
        assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(url, headers=bearer(mine)).status_code == 200


@pytest.mark.parametrize("output_format", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_output_formats_are_accepted(client, mint, output_format):
    access = token(mint)
    started = kick_off(client, "$export", access, _type="Patient", _outputFormat=output_format)
    assert started.status_code == 202
    assert client.delete(local(started.headers["Content-Location"]), headers=bearer(access)).status_code == 202


def test_cancel_then_404(client, mint):
    access = token(mint)
    started = kick_off(client, "$export", access)
    location = local(started.headers["Content-Location"])
    cancelled = client.delete(location, headers=bearer(access))
    assert cancelled.status_code == 202 and cancelled.get_json()["resourceType"] == "OperationOutcome"
    gone = client.get(location, headers=bearer(access))
    assert gone.status_code == 404 and gone.get_json()["resourceType"] == "OperationOutcome"
    assert client.delete(location, headers=bearer(access)).status_code == 404


def test_expired_jobs_and_files_are_gone(app, client, mint):
    access = token(mint)
    started = kick_off(client, "$export", access, _type="Patient")
    location = local(started.headers["Content-Location"])
    manifest = wait(client, location, access)
    assert manifest.status_code == 200 and "Expires" in manifest.headers
    job_id = location.rsplit("/", 1)[1]
    bulk = app.extensions["fhir_facade"].bulk
    with bulk.jobs.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE bulk_job SET expires_at = 1 WHERE id = ?", (job_id,))
    assert client.get(location, headers=bearer(access)).status_code == 404
    assert client.get(local(manifest.get_json()["output"][0]["url"]), headers=bearer(access)).status_code == 404
    assert (bulk.root / job_id).is_dir()
    bulk.runner.sweep(force=True)
    assert not (bulk.root / job_id).exists()


def test_type_and_since(client, mint):
    access = token(mint)
    manifest = export(client, "$export", access, _type="Patient,Practitioner", _since="2999-01-01T00:00:00Z")
    assert [o["type"] for o in manifest["output"]] == ["Practitioner"]  # no Patient changed since; Practitioner cannot tell
    notes = download(client, manifest["error"][0]["url"], access)
    assert "Practitioner has no last-updated time" in notes[0]["issue"][0]["diagnostics"]
    assert notes[0]["issue"][0]["severity"] == "information"
    everyone = export(client, "$export", access, _type="Patient", _since="1900-01-01T00:00:00+00:00")
    assert everyone["output"][0]["count"] == len(searched_ids(client, "Patient", access))
    # _since and _until bracket meta.lastUpdated exactly as the search of _lastUpdated does
    patients = resources(client, everyone, access)["Patient"]
    middle = sorted(p["meta"]["lastUpdated"] for p in patients)[len(patients) // 2]
    later = export(client, "$export", access, _type="Patient", _since=middle)
    earlier = export(client, "$export", access, _type="Patient", _until=middle)
    assert later["output"][0]["count"] == len(searched_ids(client, "Patient", access, f"_lastUpdated=gt{middle}"))
    assert later["output"][0]["count"] + earlier["output"][0]["count"] == len(patients)


def test_group_since_applies_to_every_member_alike(client, mint):
    """As docs/bulk-export.md says: no whole compartments for members, whenever they joined
    (the legacy data cannot tell when that was); each member's resources changed since."""
    access = token(mint)
    women = searched_ids(client, "Patient", access, "gender=female")
    conditions = resources(client, export(client, "Group/women/$export", access, _type="Condition"), access)["Condition"]
    middle = sorted(c["meta"]["lastUpdated"] for c in conditions)[len(conditions) // 2]
    manifest = export(client, "Group/women/$export", access, _type="Condition", _since=middle)
    later = resources(client, manifest, access)["Condition"]
    expected = {c["id"] for c in conditions if c["meta"]["lastUpdated"] > middle}
    assert {c["id"] for c in later} == expected and 0 < len(expected) < len(conditions)
    assert {c["subject"]["reference"] for c in later} <= {f"Patient/{w}" for w in women}


def test_type_filter_is_the_search_engine_ored_per_type(client, mint):
    access = token(mint)
    labs = export(client, "$export", access, _type="Observation", _typeFilter=f"Observation?category={LAB}")
    exported = resources(client, labs, access)["Observation"]
    assert sorted(r["id"] for r in exported) == sorted(searched_ids(client, "Observation", access, "category=laboratory"))
    both = export(
        client,
        "$export",
        access,
        _type="Observation",
        _typeFilter=["Observation?category=laboratory", "Observation?category=vital-signs"],
    )
    expected = searched_ids(client, "Observation", access, "category=laboratory") + searched_ids(
        client, "Observation", access, "category=vital-signs"
    )
    assert sorted(r["id"] for r in resources(client, both, access)["Observation"]) == sorted(expected)


def test_elements_subset_and_tag(client, mint):
    access = token(mint)
    manifest = export(client, "$export", access, _type="Patient", _elements="birthDate")
    for patient in resources(client, manifest, access)["Patient"]:
        assert set(patient) <= {"resourceType", "id", "meta", "birthDate"}
        assert any(tag["code"] == "SUBSETTED" for tag in patient["meta"]["tag"])


def test_granular_scope_narrows_the_export_in_sql(client, mint):
    access = token(mint, f"system/Observation.rs?category={LAB} system/Patient.rs")
    manifest = export(client, "$export", access)
    found = resources(client, manifest, access)
    assert set(found) == {"Observation", "Patient"}  # only what the token may read
    categories = Counter(c["code"] for r in found["Observation"] for cat in r["category"] for c in cat["coding"])
    assert set(categories) == {"laboratory"}
    everything = token(mint)
    assert len(found["Observation"]) == len(searched_ids(client, "Observation", everything, "category=laboratory"))
    # a type the token cannot read, asked for by name: 403
    refused = kick_off(client, "$export", access, _type="Condition")
    assert refused.status_code == 403 and refused.get_json()["resourceType"] == "OperationOutcome"


def test_patient_level_export_is_the_compartment_types(client, mint):
    access = token(mint)
    manifest = export(client, "Patient/$export", access)
    types = {o["type"] for o in manifest["output"]}
    assert "Patient" in types and "Observation" in types
    assert not types & {"Practitioner", "Organization", "Location", "Medication", "Group"}


def test_patient_parameter_in_post_keeps_to_those_compartments(client, mint):
    access = token(mint)
    chosen = searched_ids(client, "Patient", access)[:3]
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_type", "valueString": "Patient,Observation"}]
        + [{"name": "patient", "valueReference": {"reference": f"Patient/{p}"}} for p in chosen],
    }
    headers = {**bearer(access), "Prefer": "respond-async", "Content-Type": "application/fhir+json"}
    started = client.post("/fhir/Patient/$export", json=body, headers=headers)
    assert started.status_code == 202, started.get_json()
    manifest = wait(client, started.headers["Content-Location"], access).get_json()
    found = resources(client, manifest, access)
    assert sorted(p["id"] for p in found["Patient"]) == sorted(chosen)
    subjects = {o["subject"]["reference"] for o in found["Observation"]}
    assert subjects <= {f"Patient/{p}" for p in chosen}
    expected = sum(len(searched_ids(client, "Observation", access, f"patient={p}")) for p in chosen)
    assert len(found["Observation"]) == expected


def test_a_group_lists_its_members_in_sql(app, client, mint, monkeypatch):
    """Group read carries ``quantity`` and ``member[]`` (references to the Patients of the
    group's search), from a count and one page: never a statement per member."""
    access = token(mint)
    women = searched_ids(client, "Patient", access, "gender=female")
    engine = app.extensions["fhir_facade"].service.adapter.engine
    with count_statements(engine) as statements:
        group = client.get("/fhir/Group/women", headers=bearer(access)).get_json()
    assert len(statements) == 2 and len(women) > 2
    get_fhir_model_class("Group").model_validate(group)
    assert (group["type"], group["actual"], group["quantity"]) == ("person", True, len(women))
    assert sorted(m["entity"]["reference"] for m in group["member"]) == sorted(f"Patient/{p}" for p in women)
    assert "meta" not in group
    bundle = client.get("/fhir/Group?_id=women", headers=bearer(access)).get_json()
    assert bundle["entry"][0]["resource"]["quantity"] == len(women)
    # a group larger than the listing limit says how many it has and that the list is partial
    monkeypatch.setattr(groups, "MEMBER_LIMIT", 2)
    group = client.get("/fhir/Group/women", headers=bearer(access)).get_json()
    get_fhir_model_class("Group").model_validate(group)
    assert group["quantity"] == len(women) and len(group["member"]) == 2
    assert group["meta"]["tag"][0]["code"] == "SUBSETTED"


def test_group_members_are_an_id_query(app, client, mint, monkeypatch):
    """A Group's members (its read, its export's patient batches) come from a statement selecting
    their ids: no Patient is built to learn who is in it."""
    access = token(mint)
    women = searched_ids(client, "Patient", access, "gender=female")
    state = app.extensions["fhir_facade"]
    engine = state.service.adapter.engine

    def no_building(*args, **kwargs):
        raise AssertionError("a Patient was built to learn a member's id")

    monkeypatch.setattr(sql_adapter, "_to_resource", no_building)
    with count_statements(engine) as statements:
        group = client.get("/fhir/Group/women", headers=bearer(access)).get_json()
    assert sorted(m["entity"]["reference"] for m in group["member"]) == sorted(f"Patient/{p}" for p in women)
    assert len(statements) == 2 and "last_nm" not in statements[-1]
    found, cursor = [], None
    while True:  # the export's batches: pages of 7, each after the last one's cursor
        page = state.bulk.engine.members("women", cursor, 7)
        assert all(set(r) == {"resourceType", "id"} for r in page.resources)
        found += [r["id"] for r in page.resources]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert found == sorted(women) and len(found) > 7


def test_a_group_names_only_the_patients_the_token_may_read(client, mint):
    """Members are narrowed by the reader's Patient access: a granular scope sees only its
    patients, a token without Patient access sees neither members nor their number."""
    men_only = token(mint, "system/Group.rs system/Patient.rs?gender=male")
    group = client.get("/fhir/Group/women", headers=bearer(men_only)).get_json()
    assert group["quantity"] == 0 and "member" not in group
    old = token(mint, "system/Group.rs system/Patient.rs?birthdate=lt1950-01-01")
    expected = searched_ids(client, "Patient", token(mint), "gender=female&birthdate=lt1950-01-01")
    assert expected
    group = client.get("/fhir/Group/women", headers=bearer(old)).get_json()
    assert sorted(m["entity"]["reference"] for m in group.get("member", [])) == sorted(f"Patient/{p}" for p in expected)
    assert group["quantity"] == len(expected)
    no_patients = token(mint, "system/Group.rs")
    group = client.get("/fhir/Group/women", headers=bearer(no_patients)).get_json()
    assert group["id"] == "women" and "member" not in group and "quantity" not in group
    bundle = client.get("/fhir/Group", headers=bearer(no_patients)).get_json()
    assert all("member" not in e["resource"] for e in bundle["entry"])


def test_group_read_search_and_export_of_its_members(client, mint):
    access = token(mint)
    group = client.get("/fhir/Group/women", headers=bearer(access)).get_json()
    get_fhir_model_class("Group").model_validate(group)
    assert group["name"] == "Female patients"
    bundle = client.get("/fhir/Group?name=female", headers=bearer(access)).get_json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["women"]
    assert client.get("/fhir/Group/nobody", headers=bearer(access)).status_code == 404
    missing = kick_off(client, "Group/nobody/$export", access)
    assert missing.status_code == 404 and missing.get_json()["resourceType"] == "OperationOutcome"
    # bulk clients ask for the exported types' scopes only: no Group scope is needed
    narrow = token(mint, "system/Patient.rs system/Condition.rs")
    manifest = export(client, "Group/women/$export", narrow, _type="Patient,Condition")
    assert manifest["request"].endswith("/fhir/Group/women/$export?_type=Patient,Condition")
    found = resources(client, manifest, narrow)
    women = searched_ids(client, "Patient", access, "gender=female")
    assert sorted(p["id"] for p in found["Patient"]) == sorted(women)
    conditions = sum(len(searched_ids(client, "Condition", access, f"patient={p}")) for p in women)
    assert len(found["Condition"]) == conditions > 0


def test_export_interactions_are_audited_with_job_and_counts(app, client, mint):
    access = token(mint, client_id="audited")
    started = kick_off(client, "$export", access, _type="Patient")
    location = local(started.headers["Content-Location"])
    job_id = location.rsplit("/", 1)[1]
    manifest = wait(client, location, access).get_json()
    download(client, manifest["output"][0]["url"], access)
    client.delete(location, headers=bearer(access))
    store = app.extensions["fhir_facade"].audit
    records = [r for r in store.search(limit=200) if r.get("client_id") == "audited"]
    by_interaction = {r["interaction"]: r for r in reversed(records)}  # newest first: keep the latest of each
    assert by_interaction["export"]["detail"]["job"] == job_id and by_interaction["export"]["status"] == 202
    assert by_interaction["export-status"]["detail"] == {
        "job": job_id,
        "status": "complete",
        "counts": {"Patient": manifest["output"][0]["count"]},
    }
    file_record = by_interaction["export-download"]["detail"]
    assert file_record["job"] == job_id and file_record["count"] == manifest["output"][0]["count"]
    assert by_interaction["export-cancel"]["detail"]["job"] == job_id
    assert store.verify().ok


HOSTILE = [
    ({"_type": "Patient,NoSuchType"}, 400, "NoSuchType"),
    ({"_type": "../../etc/passwd"}, 400, "_type"),
    ({"_outputFormat": "text/csv"}, 400, "_outputFormat"),
    ({"_since": "last tuesday"}, 400, "_since"),
    ({"_since": "2024-01-01T00:00:00Z' OR 1=1 --"}, 400, "_since"),
    ({"_until": "2024-13-45"}, 400, "_until"),
    ({"_typeFilter": "Observation?_sort=date"}, 400, "_sort"),
    ({"_typeFilter": "Observation?_include=Observation:patient"}, 400, "_include"),
    ({"_typeFilter": "Observation?nonsense=1"}, 400, "nonsense"),
    ({"_typeFilter": "NoType?x=1"}, 400, "_typeFilter"),
    ({"_typeFilter": "Observation?date=yesterday"}, 400, "date"),
    ({"_elements": "name;drop table"}, 400, "_elements"),
    ({"patient": "Patient/1"}, 400, "POST"),
    ({"unknownParam": "1"}, 400, "unknownParam"),
    ({"includeAssociatedData": "_custom"}, 400, "includeAssociatedData"),
    ({"_type": "Patient\x00"}, 400, "NUL"),
]


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize(("params", "status", "said"), HOSTILE)
def test_hostile_parameters_are_clear_400s(client, mint, bulk_demo, params, status, said):
    before = _digest(bulk_demo)
    response = kick_off(client, "$export", token(mint), **params)
    assert response.status_code == status
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and said in str(outcome)
    assert _digest(bulk_demo) == before  # the legacy database is never written


def test_lenient_handling_skips_and_reports(client, mint):
    access = token(mint)
    manifest = export(client, "$export", access, prefer="respond-async, handling=lenient", _type="Patient,NoSuchType", unknownParam="x")
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    notes = " ".join(i["diagnostics"] for o in download(client, manifest["error"][0]["url"], access) for i in o["issue"])
    assert "NoSuchType" in notes and "unknownParam" in notes


def test_hostile_file_names_and_bodies(client, mint):
    access = token(mint)
    manifest = export(client, "$export", access, _type="Patient")
    base = local(manifest["output"][0]["url"]).rsplit("/", 1)[0]
    for name in ("..%2Fstate.sqlite", "..", "Patient.999.ndjson", "%2e%2e"):
        assert client.get(f"{base}/{name}", headers=bearer(access)).status_code == 404
    headers = {**bearer(access), "Prefer": "respond-async"}
    assert client.post("/fhir/$export", data="x", content_type="text/plain", headers=headers).status_code == 415
    bad = client.post("/fhir/$export", json={"resourceType": "Patient"}, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["resourceType"] == "OperationOutcome"
    nested = client.post(
        "/fhir/$export", json={"resourceType": "Parameters", "parameter": [{"name": "_type", "valueX": [1]}]}, headers=headers
    )
    assert nested.status_code == 400


def test_download_is_gzipped_when_asked(client, mint):
    import gzip

    access = token(mint)
    manifest = export(client, "$export", access, _type="Observation")
    url = local(manifest["output"][0]["url"])
    plain = client.get(url, headers=bearer(access)).data
    zipped = client.get(url, headers={**bearer(access), "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.data) == plain
    assert len(zipped.data) < len(plain) / 3


def test_capability_statement_declares_bulk_data(client):
    statement = client.get("/fhir/metadata").get_json()
    get_fhir_model_class("CapabilityStatement").model_validate(statement)
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in statement["instantiates"]
    rest = statement["rest"][0]
    assert rest["operation"] == [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}]
    operations = {r["type"]: {o["name"]: o["definition"] for o in r.get("operation", [])} for r in rest["resource"]}
    assert operations["Patient"]["export"] == "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
    assert operations["Group"]["export"] == "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
    group = next(r for r in rest["resource"] if r["type"] == "Group")
    assert {i["code"] for i in group["interaction"]} == {"read", "search-type"}


def test_include_associated_data_adds_the_compartments_provenance(client, mint):
    access = token(mint)
    manifest = export(client, "Patient/$export", access, _type="Patient", includeAssociatedData="LatestProvenanceResources")
    found = resources(client, manifest, access)
    assert set(found) == {"Patient", "Provenance"}
    assert len(found["Provenance"]) == len(searched_ids(client, "Provenance", access))


def test_a_patient_token_exports_its_patients_compartment_only(client, mint):
    everyone = token(mint)
    patient = searched_ids(client, "Patient", everyone)[5]
    access = token(mint, "patient/*.rs", client_id="patient-app", patient=patient)
    manifest = export(client, "Patient/$export", access, _type="Patient,Condition,Observation")
    found = resources(client, manifest, access)
    assert [p["id"] for p in found["Patient"]] == [patient]
    assert sorted(c["id"] for c in found["Condition"]) == sorted(searched_ids(client, "Condition", everyone, f"patient={patient}"))
    assert {o["subject"]["reference"] for o in found["Observation"]} == {f"Patient/{patient}"}


def test_patient_parameter_in_a_group_export_keeps_to_members(client, mint):
    access = token(mint)
    women = searched_ids(client, "Patient", access, "gender=female")
    men = searched_ids(client, "Patient", access, "gender=male")
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_type", "valueString": "Patient"}]
        + [{"name": "patient", "valueReference": {"reference": f"Patient/{p}"}} for p in (women[0], men[0])],
    }
    headers = {**bearer(access), "Prefer": "respond-async", "Content-Type": "application/fhir+json"}
    started = client.post("/fhir/Group/women/$export", json=body, headers=headers)
    assert started.status_code == 202, started.get_json()
    manifest = wait(client, started.headers["Content-Location"], access).get_json()
    assert [p["id"] for p in resources(client, manifest, access)["Patient"]] == [women[0]]  # not the man: not a member


def test_an_export_that_matches_nothing_is_an_empty_manifest(client, mint):
    access = token(mint)
    manifest = export(client, "Group/women/$export", access, _type="Patient", _typeFilter="Patient?gender=male")
    assert manifest["output"] == [] and manifest["error"] == []
