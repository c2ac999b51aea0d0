"""Includes and $everything with a type outside the patient compartment (Practitioner).

A small mapping over the demo tables, written here, serves Encounter (enc_visit) whose
``practitioner`` parameter points at Practitioner (staff): the engine must follow any
mapping's reference parameters, not only the demo's.
"""

from __future__ import annotations

import pytest

from facade.app import create_app
from facade.config import Settings
from support.fhir_client import get_json, walk
from support.sql_statements import count_statements

MAPPING = """
mapping: includes-test
timezone: America/Chicago
resources:
  Patient:
    search:
      family: {type: string}
    sources:
      - name: pt_master
        table: pt_master
        alias: p
        where: [{column: p.del_flg, not_equals: "Y"}]
        id: "{p.pt_guid}"
        last_updated: {column: p.upd_dttm, date: "%Y%m%d%H%M%S"}
        resource:
          name: [{family: {column: p.last_nm}}]
        search:
          family: {column: p.last_nm, normalized: upper}
  Encounter:
    search:
      patient: {type: reference, target: Patient}
      practitioner: {type: reference, target: Practitioner}
    sources:
      - name: enc_visit
        table: enc_visit
        alias: e
        joins:
          - {table: pt_master, alias: p, match: {e.pt_seq: p.pt_seq}}
        where:
          - {column: e.del_flg, not_equals: "Y"}
          - {column: p.del_flg, not_equals: "Y"}
        id: "{e.visit_guid}"
        last_updated: {column: e.upd_dttm, date: "%Y%m%d%H%M%S"}
        resource:
          status: finished
          class: {system: http://terminology.hl7.org/CodeSystem/v3-ActCode, code: AMB}
          subject: {reference: {template: "Patient/{p.pt_guid}"}}
          participant:
            - individual: {reference: {template: "Practitioner/{e.attend_dr}"}}
        search:
          patient: {column: p.pt_guid}
          practitioner: {column: e.attend_dr}
  Practitioner:
    search:
      family: {type: string}
    sources:
      - name: staff
        table: staff
        alias: s
        id: "{s.dr_cd}"
        resource:
          name: [{family: {column: s.last_nm}}]
        search:
          family: {column: s.last_nm, normalized: upper}
"""
LIVE = "(e.del_flg IS NULL OR e.del_flg <> 'Y') AND (p.del_flg IS NULL OR p.del_flg <> 'Y')"


@pytest.fixture(scope="module")
def client(demo_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("mapping") / "mapping.yaml"
    path.write_text(MAPPING)
    app = create_app(Settings(auth_mode="off", demo_path=demo_path, mapping=str(path), base_url="http://testserver/fhir"))
    app.extensions["fhir_facade"].adapter.bound()
    return app.test_client()


@pytest.fixture(scope="module")
def patient(raw_db) -> str:
    return raw_db.execute(
        f"SELECT p.pt_guid FROM enc_visit e JOIN pt_master p ON e.pt_seq = p.pt_seq JOIN staff s ON s.dr_cd = e.attend_dr "
        f"WHERE {LIVE} GROUP BY p.pt_guid ORDER BY count(DISTINCT e.attend_dr) DESC, p.pt_guid LIMIT 1"
    ).fetchone()[0]


def _ids(bundle: dict, mode: str, resource_type: str) -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode and e["resource"]["resourceType"] == resource_type
    ]


def _practitioners_of_encounters(raw_db, encounter_ids: list[str]) -> set[str]:
    marks = ",".join("?" * len(encounter_ids))
    sql = f"SELECT DISTINCT s.dr_cd FROM enc_visit e JOIN staff s ON s.dr_cd = e.attend_dr WHERE e.visit_guid IN ({marks})"
    return {row[0] for row in raw_db.execute(sql, encounter_ids)}


def test_include_practitioner_per_page(client, raw_db):
    for bundle in walk(client, "/fhir/Encounter?_count=25&_include=Encounter:practitioner")[:4]:
        expected = _practitioners_of_encounters(raw_db, _ids(bundle, "match", "Encounter"))
        included = _ids(bundle, "include", "Practitioner")
        assert expected and sorted(included) == sorted(expected)


def test_revinclude_encounters_of_practitioners(client, raw_db):
    # Two doctors with a few encounters each, so the revinclude cap is not reached.
    few = [row[0] for row in raw_db.execute("SELECT attend_dr FROM enc_visit GROUP BY attend_dr HAVING count(*) < 200 LIMIT 2")]
    bundle = get_json(client, f"/fhir/Practitioner?_id={','.join(few)}&_revinclude=Encounter:practitioner")
    doctors = _ids(bundle, "match", "Practitioner")
    assert sorted(doctors) == sorted(few)
    marks = ",".join("?" * len(doctors))
    expected = {
        row[0]
        for row in raw_db.execute(
            f"SELECT e.visit_guid FROM enc_visit e JOIN pt_master p ON e.pt_seq = p.pt_seq WHERE e.attend_dr IN ({marks}) AND {LIVE}",
            doctors,
        )
    }
    assert expected and set(_ids(bundle, "include", "Encounter")) == expected


def test_capability_lists_the_mapping_includes(client):
    resources = {r["type"]: r for r in get_json(client, "/fhir/metadata")["rest"][0]["resource"]}
    assert resources["Encounter"]["searchInclude"] == ["Encounter:patient", "Encounter:practitioner"]
    assert resources["Practitioner"]["searchRevInclude"] == ["Encounter:practitioner"]
    assert resources["Patient"]["searchRevInclude"] == ["Encounter:patient", "AuditEvent:patient"]


def test_everything_includes_referenced_practitioners_per_page(client, raw_db, patient):
    encounters = {
        row[0]
        for row in raw_db.execute(
            f"SELECT e.visit_guid FROM enc_visit e JOIN pt_master p ON e.pt_seq = p.pt_seq WHERE p.pt_guid = ? AND {LIVE}", (patient,)
        )
    }
    assert len(encounters) > 2
    pages = walk(client, f"/fhir/Patient/{patient}/$everything?_count=2")
    seen = set()
    for bundle in pages:
        on_page = _ids(bundle, "match", "Encounter")
        seen |= set(on_page)
        assert sorted(_ids(bundle, "include", "Practitioner")) == sorted(_practitioners_of_encounters(raw_db, on_page) if on_page else [])
    assert seen == encounters
    assert _ids(pages[0], "match", "Patient") == [patient]


def test_everything_page_statements(client, patient):
    adapter = client.application.extensions["fhir_facade"].adapter
    with count_statements(adapter.engine) as statements:
        bundle = get_json(client, f"/fhir/Patient/{patient}/$everything?_count=100")
    assert _ids(bundle, "include", "Practitioner")
    assert len(statements) == 3  # Patient, Encounter, and one Practitioner lookup for the page
