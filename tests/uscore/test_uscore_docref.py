"""DocumentReference/$docref (US Core): the patient's stored documents by care dates and type."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from uscore_helpers import busiest_for, ids_of, sql_ids

from support.fhir_client import get_json, q

# A note's care dates are its visit's period (admitted .. discharged; an open visit has no end yet).
OVERLAP = (
    "x.sign_stat <> 'X' AND x.visit_no IN (SELECT e.visit_no FROM enc_visit e WHERE e.adm_dt NOT LIKE '0000%' "
    "AND substr(e.adm_dt, 1, 10) <= ? AND (e.dsch_dt IS NULL OR e.dsch_dt = '' OR substr(e.dsch_dt, 1, 10) >= ?))"
)


@pytest.fixture(scope="module")
def patient(raw_db) -> str:
    return busiest_for(raw_db, "DocumentReference")


def test_care_dates_and_type_over_pages(client, raw_db, patient):
    url = f"/fhir/DocumentReference/$docref?patient={patient}&start=2023-01-01&end=2023-06-30&_count=10"
    found = ids_of(client, url)
    expected = sql_ids(raw_db, "DocumentReference", f"p.pt_guid = ? AND {OVERLAP}", (patient, "2023-06-30", "2023-01-01"))
    assert len(expected) > 20 and len(found) == len(set(found)) and set(found) == expected
    typed = ids_of(client, f"{url}&type={q('http://loinc.org|11506-3')}")
    assert set(typed) == sql_ids(
        raw_db, "DocumentReference", f"p.pt_guid = ? AND x.note_typ = 'PN' AND {OVERLAP}", (patient, "2023-06-30", "2023-01-01")
    )
    assert 0 < len(typed) < len(found)


def test_without_dates_the_most_recent_current_documents(client, raw_db, patient):
    bundle = get_json(client, f"/fhir/DocumentReference/$docref?patient=Patient/{patient}&_count=5")
    Bundle.model_validate(bundle)
    dates = [e["resource"]["date"] for e in bundle["entry"]]
    newest = raw_db.execute(
        "SELECT max(x.note_dttm) FROM note_hdr x JOIN pt_master p ON p.pt_seq = x.pt_seq "
        "WHERE p.pt_guid = ? AND x.del_flg <> 'Y' AND x.sign_stat <> 'X'",
        (patient,),
    ).fetchone()[0]
    assert len(dates) == 5 and dates == sorted(dates, reverse=True)
    assert {e["resource"]["status"] for e in bundle["entry"]} == {"current"}
    local = datetime.strptime(newest, "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo("America/New_York"))  # the demo's time zone
    assert dates[0] == local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_post_with_parameters_is_the_same(client, patient):
    got = ids_of(client, f"/fhir/DocumentReference/$docref?patient={patient}&start=2023-01-01&end=2023-03-31")
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueId": patient},
            {"name": "start", "valueDate": "2023-01-01"},
            {"name": "end", "valueDate": "2023-03-31"},
            {"name": "on-demand", "valueBoolean": False},
        ],
    }
    response = client.post("/fhir/DocumentReference/$docref", json=body, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200
    assert {e["resource"]["id"] for e in response.get_json()["entry"] if e["search"]["mode"] == "match"} <= set(got)
    assert got


@pytest.mark.parametrize(
    "query",
    ["", "start=2020-01-01", "patient=a&patient=b", "patient=a&start=yesterday", "patient=a&on-demand=maybe", "patient=a&end=2020-13-01"],
)
def test_bad_requests_are_400(client, query):
    body = get_json(client, f"/fhir/DocumentReference/$docref?{query}", status=400)
    assert body["resourceType"] == "OperationOutcome"


def test_in_the_capability_statement(client):
    statement = get_json(client, "/fhir/metadata")
    entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "DocumentReference")
    assert {"name": "docref", "definition": "http://hl7.org/fhir/us/core/OperationDefinition/docref"} in entry["operation"]
