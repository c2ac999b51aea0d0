"""Every SHALL search of the US Core 6.1 server statement on the later types, against SQL, over pages."""

from __future__ import annotations

import pytest
from uscore_helpers import busiest_for, ids_of, sql_ids

from support.fhir_client import get_json, q, walk

DOC_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category|clinical-note"
PLAN_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan"
SNOMED, LOINC, CPT = "http://snomed.info/sct", "http://loinc.org", "http://www.ama-assn.org/go/cpt"

# (type, the search after '?patient=<the patient with most matches>&', the SQL condition, its parameters, _count)
PATIENT_SEARCHES = [
    ("DocumentReference", "", "1 = 1", (), 100),
    ("DocumentReference", f"category={q(DOC_CATEGORY)}", "1 = 1", (), 100),
    (
        "DocumentReference",
        f"type={q(LOINC + '|11506-3')}",
        "x.note_typ IN (SELECT note_typ FROM note_typ_cd WHERE loinc_cd = '11506-3')",
        (),
        50,
    ),
    ("DocumentReference", f"type={q('urn:fhir-facade:demo:note-type|RAD')}", "x.note_typ = 'RAD'", (), 5),
    ("DocumentReference", f"category={q(DOC_CATEGORY)}&date=ge2024-01-01", "x.note_dttm >= '20240101'", (), 40),
    ("DocumentReference", "category=clinical-note&date=lt2020", "x.note_dttm < '2020'", (), 40),
    ("DocumentReference", "status=entered-in-error", "x.sign_stat = 'X'", (), 3),
    ("CarePlan", f"category={q(PLAN_CATEGORY)}", "1 = 1", (), 1),
    ("CareTeam", "status=active", "x.ct_stat = 'A'", (), 1),
    ("CareTeam", f"role={q(SNOMED + '|446050000')}", "x.pcp_dr <> ''", (), 1),
    ("Goal", "", "1 = 1", (), 1),
    ("Device", "", "1 = 1", (), 2),
    ("Device", f"type={q(SNOMED + '|705643001')}", "x.dev_typ = 'STENT'", (), 1),
    ("Coverage", "", "1 = 1", (), 1),
    ("MedicationDispense", "", "1 = 1", (), 10),
    ("MedicationDispense", "status=completed&type=RF", "x.fill_stat = 'D' AND x.fill_no > 0", (), 10),
    ("ServiceRequest", "", "1 = 1", (), 20),
    ("ServiceRequest", f"category={q(SNOMED + '|363679005')}", "x.ord_cd IN ('XRCHEST', 'CTHEAD', 'ECHO')", (), 10),
    ("ServiceRequest", f"code={q(CPT + '|93306')}", "x.ord_cd = 'ECHO'", (), 5),
    ("ServiceRequest", "code=REFCARD", "x.ord_cd = 'REFCARD'", (), 5),
    (
        "ServiceRequest",
        f"category={q(SNOMED + '|386053000')}&authored=ge2020-01-01",
        "x.ord_cd LIKE 'REF%' AND x.ord_dttm >= '2020'",
        (),
        5,
    ),
    ("Specimen", "", "1 = 1", (), 100),
    ("RelatedPerson", "", "1 = 1", (), 1),
]


@pytest.mark.parametrize(("resource_type", "search", "where", "params", "count"), PATIENT_SEARCHES)
def test_patient_searches_match_sql_over_pages(client, raw_db, resource_type, search, where, params, count):
    patient = busiest_for(raw_db, resource_type, where, params)
    url = f"/fhir/{resource_type}?patient={patient}&{search}&_count={count}".replace("&&", "&")
    found = ids_of(client, url)
    expected = sql_ids(raw_db, resource_type, f"p.pt_guid = ? AND {where}", (patient, *params))
    assert expected, "the demo has rows for this search"
    assert len(found) == len(set(found)) and set(found) == expected
    if len(expected) > 2 * count:
        assert len(walk(client, url)) > 2  # several pages


# Type-level searches over every patient (many pages each).
TYPE_SEARCHES = [
    ("CarePlan", f"category={q(PLAN_CATEGORY)}&status=active", "x.plan_stat = 'A'", 100),
    ("CareTeam", "status=inactive", "x.ct_stat = 'I'", 25),
    ("CareTeam", f"role={q(SNOMED + '|768730001')}", "x.cm_nm <> ''", 25),
    ("CareTeam", "role=309343006,768730001", "x.spec_dr <> '' OR x.cm_nm <> ''", 25),
    ("CareTeam", f"role:not={q(SNOMED + '|309343006')}", "x.spec_dr IS NULL OR x.spec_dr = ''", 25),
    ("CareTeam", f"role={q(SNOMED + '|768730001')}&status=active", "x.cm_nm <> '' AND x.ct_stat = 'A'", 25),
    ("Goal", "lifecycle-status=completed", "x.goal_stat = 'M'", 25),
    ("Goal", "target-date=lt2026-01-01", "x.target_dt < '20260101'", 100),
    ("Goal", f"description={q('urn:fhir-facade:demo:goal|A1C7')}", "x.goal_cd = 'A1C7'", 20),
    ("Device", "status=inactive", "x.imp_stat = 'R'", 2),
    ("Coverage", "status=cancelled", "x.cov_stat = 'T'", 50),
    ("RelatedPerson", "name=smith", "upper(x.nok_nm) LIKE 'SMITH%'", 20),
    ("MedicationDispense", "status=cancelled", "x.fill_stat = 'C'", 100),
]


@pytest.mark.parametrize(("resource_type", "search", "where", "count"), TYPE_SEARCHES)
def test_type_searches_match_sql_over_pages(client, raw_db, resource_type, search, where, count):
    url = f"/fhir/{resource_type}?{search}&_count={count}"
    found = ids_of(client, url)
    expected = sql_ids(raw_db, resource_type, where)
    assert len(expected) > 2 * count  # several pages
    assert len(found) == len(set(found)) and set(found) == expected


@pytest.mark.parametrize("resource_type", ["DocumentReference", "ServiceRequest", "Specimen", "RelatedPerson", "Device"])
def test_read_and_id_search(client, raw_db, resource_type):
    some = sorted(sql_ids(raw_db, resource_type))[::97][:5]
    for resource_id in some:
        assert get_json(client, f"/fhir/{resource_type}/{resource_id}")["id"] == resource_id
    found = ids_of(client, f"/fhir/{resource_type}?_id={','.join(some)}")
    assert sorted(found) == some
    get_json(client, f"/fhir/{resource_type}/no-such-id", status=404)


def test_deleted_rows_are_not_served(client, raw_db):
    deleted = raw_db.execute("SELECT note_guid FROM note_hdr WHERE del_flg = 'Y' LIMIT 3").fetchall()
    assert deleted
    for (guid,) in deleted:
        get_json(client, f"/fhir/DocumentReference/{guid}", status=404)


def test_practitioner_role_searches(client, raw_db):
    family = {r[0] for r in raw_db.execute("SELECT 'role-' || dr_cd FROM staff WHERE specialty = 'FAMILY MEDICINE'")}
    assert (
        ids_of(client, f"/fhir/PractitionerRole?specialty={q('http://nucc.org/provider-taxonomy|207Q00000X')}&_count=2")
        and set(ids_of(client, f"/fhir/PractitionerRole?specialty={q('http://nucc.org/provider-taxonomy|207Q00000X')}&_count=2")) == family
    )
    doctor = raw_db.execute("SELECT dr_cd FROM staff ORDER BY dr_cd LIMIT 1 OFFSET 5").fetchone()[0]
    bundle = get_json(client, f"/fhir/PractitionerRole?practitioner=Practitioner/{doctor}&_include=PractitionerRole:practitioner")
    kinds = {(e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]}
    assert kinds == {("PractitionerRole", f"role-{doctor}", "match"), ("Practitioner", doctor, "include")}
    assert len(ids_of(client, "/fhir/PractitionerRole?_count=7")) == raw_db.execute("SELECT count(*) FROM staff").fetchone()[0]


def test_revinclude_provenance_of_every_note_on_the_page(client, busiest):
    bundle = get_json(client, f"/fhir/DocumentReference?patient={busiest['DocumentReference']}&_count=20&_revinclude=Provenance:target")
    notes = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
    provenance = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
    assert len(notes) == 20
    assert sorted(p["target"][0]["reference"] for p in provenance) == sorted(f"DocumentReference/{n}" for n in notes)


@pytest.mark.parametrize(
    "resource_type", ["CarePlan", "CareTeam", "Goal", "Device", "Coverage", "MedicationDispense", "ServiceRequest", "RelatedPerson"]
)
def test_revinclude_provenance(client, busiest, resource_type):
    bundle = get_json(client, f"/fhir/{resource_type}?patient={busiest[resource_type]}&_revinclude=Provenance:target")
    matches = {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"}
    targets = {e["resource"]["target"][0]["reference"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"}
    assert matches and targets == {f"{resource_type}/{i}" for i in matches}


def test_dispense_includes_its_medication(client, busiest):
    bundle = get_json(client, f"/fhir/MedicationDispense?patient={busiest['MedicationDispense']}&_include=MedicationDispense:medication")
    dispensed = {e["resource"]["medicationReference"]["reference"] for e in bundle["entry"] if e["search"]["mode"] == "match"}
    included = {f"Medication/{e['resource']['id']}" for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert dispensed and included == dispensed


def test_bad_search_values_are_400(client):
    for url in ("/fhir/DocumentReference?patient=x&date=notadate", "/fhir/Goal?target-date=2020-13-45", "/fhir/Device?status=a|b|c"):
        body = get_json(client, url, status=400)
        assert body["resourceType"] == "OperationOutcome"
