"""DiagnosticReport for reports and notes (US Core): the demo's notes that are signed reports
(radiology, ECG and pathology readings), beside the laboratory reports, against SQL over pages."""

from __future__ import annotations

import base64

import pytest
from uscore_helpers import busiest_for, ids_of, sql_ids

from legacy_adapters.sources.documents import v2_unescape
from support.demo_sql import NOTE_REPORTS
from support.fhir_client import get_json, q, walk

LOINC = "http://loinc.org"
LAB = "http://terminology.hl7.org/CodeSystem/v2-0074|LAB"
NOTE_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-note"
LIVE_LABS = (
    "SELECT x.ord_guid FROM lab_order x JOIN pt_master p ON x.pt_seq = p.pt_seq "
    "WHERE p.pt_guid = ? AND (x.del_flg IS NULL OR x.del_flg <> 'Y') AND (p.del_flg IS NULL OR p.del_flg <> 'Y')"
)

# (the search after '?patient=<the patient with most matches>&', the SQL condition on the note, _count)
NOTE_SEARCHES = [
    (f"category={q(LOINC + '|LP29684-5')}", "t.rpt_cat = 'RAD'", 2),
    ("category=LP29708-2", "t.rpt_cat = 'CARD'", 2),
    (f"category={q(LOINC + '|LP7839-6')}", "t.rpt_cat = 'PATH'", 1),
    (f"category={q(LOINC + '|LP29708-2')}&date=ge2020-01-01", "t.rpt_cat = 'CARD' AND x.note_dttm >= '20200101'", 1),
    (f"category={q(LOINC + '|LP29684-5')}&date=lt2021", "t.rpt_cat = 'RAD' AND x.note_dttm < '2021'", 1),
    (f"code={q(LOINC + '|18748-4')}", "x.note_typ = 'RAD'", 2),
    (f"code={q(LOINC + '|11526-1')}", "x.note_typ = 'PATH'", 1),
    (f"code={q('urn:fhir-facade:demo:note-type|ECG')}", "x.note_typ = 'ECG'", 2),
    (f"code={q(LOINC + '|11524-6')}&date=ge2018", "x.note_typ = 'ECG' AND x.note_dttm >= '2018'", 1),
]


@pytest.mark.parametrize(("search", "where", "count"), NOTE_SEARCHES)
def test_note_report_searches_match_sql_over_pages(client, raw_db, search, where, count):
    patient = busiest_for(raw_db, NOTE_REPORTS, where)
    url = f"/fhir/DiagnosticReport?patient={patient}&{search}&_count={count}"
    found = ids_of(client, url)
    expected = sql_ids(raw_db, NOTE_REPORTS, f"p.pt_guid = ? AND {where}", (patient,))
    assert expected, "the demo has rows for this search"
    assert len(found) == len(set(found)) and set(found) == expected
    if len(expected) > 2 * count:
        assert len(walk(client, url)) > 2  # several pages


def test_patient_search_serves_both_sources_and_category_tells_them_apart(client, raw_db):
    patient = busiest_for(raw_db, NOTE_REPORTS)
    notes = sql_ids(raw_db, NOTE_REPORTS, "p.pt_guid = ?", (patient,))
    labs = {row[0] for row in raw_db.execute(LIVE_LABS, (patient,))}
    assert notes and labs
    every = ids_of(client, f"/fhir/DiagnosticReport?patient=Patient/{patient}&_count=7")
    assert len(every) == len(set(every)) and set(every) == notes | labs
    assert set(ids_of(client, f"/fhir/DiagnosticReport?patient={patient}&category={q(LAB)}&_count=7")) == labs
    categories = ",".join(f"{LOINC}|{c}" for c in ("LP29684-5", "LP29708-2", "LP7839-6"))
    assert set(ids_of(client, f"/fhir/DiagnosticReport?patient={patient}&category={q(categories)}")) == notes
    # a lab panel's LOINC and a note type's LOINC each find their own source only
    assert set(ids_of(client, f"/fhir/DiagnosticReport?patient={patient}&code={q(LOINC + '|18748-4')}")) <= notes


def test_status_spans_both_sources(client, raw_db):
    patient = busiest_for(raw_db, NOTE_REPORTS, "x.sign_stat = 'U'")
    drafts = sql_ids(raw_db, NOTE_REPORTS, "p.pt_guid = ? AND x.sign_stat = 'U'", (patient,))
    labs = {row[0] for row in raw_db.execute(LIVE_LABS + " AND x.ord_stat = 'P'", (patient,))}
    assert drafts
    assert set(ids_of(client, f"/fhir/DiagnosticReport?patient={patient}&status=preliminary&_count=1")) == drafts | labs


def test_read_presents_the_note_text(client, raw_db):
    note_id, guid, body, typ, stat = raw_db.execute(
        "SELECT x.note_id, x.note_guid, b.note_body, x.note_typ, x.sign_stat FROM note_hdr x "
        "JOIN note_txt b ON b.note_id = x.note_id JOIN pt_master p ON p.pt_seq = x.pt_seq "
        "WHERE x.note_typ = 'PATH' AND x.del_flg <> 'Y' AND p.del_flg <> 'Y' AND x.sign_stat = 'S' ORDER BY x.note_id LIMIT 1"
    ).fetchone()
    report = get_json(client, f"/fhir/DiagnosticReport/{guid}")
    assert report["meta"]["profile"] == [NOTE_PROFILE]
    assert report["status"] == "final"
    assert report["category"] == [{"coding": [{"system": LOINC, "code": "LP7839-6", "display": "Pathology"}]}]
    assert {"system": LOINC, "code": "11526-1", "display": "Surgical Pathology Report"} in report["code"]["coding"]
    assert report["identifier"][0]["value"] == str(note_id)
    assert report["performer"][0]["reference"].startswith("Practitioner/")
    (form,) = report["presentedForm"]
    text = base64.b64decode(form["data"]).decode("utf-8")
    assert text == v2_unescape(body) and text.startswith("SPECIMEN: COLON, BIOPSY\n")
    assert form["contentType"] == "text/plain;charset=utf-8" and form["title"] == "Surgical Pathology Report"
    assert form["creation"] == report["effectiveDateTime"]
    # the same note, as a document, carries the same text
    document = get_json(client, f"/fhir/DocumentReference/{guid}")
    assert document["content"][0]["attachment"]["data"] == form["data"]


def test_notes_that_are_not_reports_are_not_diagnostic_reports(client, raw_db):
    guid = raw_db.execute("SELECT note_guid FROM note_hdr WHERE note_typ = 'PN' AND del_flg <> 'Y' LIMIT 1").fetchone()[0]
    assert client.get(f"/fhir/DocumentReference/{guid}").status_code == 200
    response = client.get(f"/fhir/DiagnosticReport/{guid}")
    assert response.status_code == 404 and response.get_json()["resourceType"] == "OperationOutcome"


def test_revinclude_provenance_of_both_sources(client, raw_db):
    patient = busiest_for(raw_db, NOTE_REPORTS)
    notes = sql_ids(raw_db, NOTE_REPORTS, "p.pt_guid = ?", (patient,))
    labs = {row[0] for row in raw_db.execute(LIVE_LABS, (patient,))}
    provenances = {}
    for bundle in walk(client, f"/fhir/DiagnosticReport?patient={patient}&_revinclude=Provenance:target&_count=10"):
        for entry in bundle.get("entry", []):
            if entry["search"]["mode"] == "include":
                resource = entry["resource"]
                provenances[resource["id"]] = {t["reference"] for t in resource["target"]}
    assert {f"rpt-{i}" for i in notes} | {f"lab-{i}" for i in labs} == set(provenances)
    assert all(provenances[f"rpt-{i}"] == {f"DiagnosticReport/{i}"} for i in notes)
