"""Checklist G/H: scopes narrow the SQL. A patient/ token never reaches another patient's rows,
granular scopes narrow by category in the statement itself, and ids match hand-written SQL."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from facade.access.grant import Access, Grant
from facade.access.scopes import parse_scopes
from facade.search.request import SearchRequest
from support.smart_tokens import bearer
from support.sql_statements import count_statements

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
VITALS = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"


@pytest.fixture(scope="module")
def patients(raw_db):
    """Two live patients, each with lab results and vital signs."""
    rows = raw_db.execute(
        "SELECT p.pt_guid FROM pt_master p WHERE p.del_flg <> 'Y' AND p.merged_to_seq IS NULL "
        "AND EXISTS (SELECT 1 FROM lab_result r WHERE r.pt_seq = p.pt_seq AND r.del_flg <> 'Y') "
        "AND EXISTS (SELECT 1 FROM vitals v WHERE v.pt_seq = p.pt_seq AND v.del_flg <> 'Y') ORDER BY p.pt_seq LIMIT 2"
    ).fetchall()
    return rows[0][0], rows[1][0]


def _live_ids(raw_db, guid: str, table: str, id_column: str, extra: str = "") -> set[str]:
    """The ids of a patient's live rows of ``table`` (aliased t)."""
    statement = (
        f"SELECT t.{id_column} FROM {table} t JOIN pt_master p ON t.pt_seq = p.pt_seq "
        f"WHERE p.pt_guid = ? AND t.del_flg <> 'Y' AND p.del_flg <> 'Y' {extra}"
    )
    return {row[0] for row in raw_db.execute(statement, (guid,))}


def lab_ids(raw_db, guid: str) -> set[str]:
    return _live_ids(raw_db, guid, "lab_result", "res_guid")


def smoking_ids(raw_db, guid: str) -> set[str]:
    return _live_ids(raw_db, guid, "soc_hx", "sh_guid")


def occupation_ids(raw_db, guid: str) -> set[str]:
    return _live_ids(raw_db, guid, "emp_hx", "emp_guid", "AND t.occ_desc <> ''")


def rows_of(raw_db, table: str, guid_column: str, guid: str) -> set[str]:
    """The patient's live rows of a table whose rows are served as several Observations."""
    return {
        row[0]
        for row in raw_db.execute(
            f"SELECT x.{guid_column} FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq "
            "WHERE p.pt_guid = ? AND x.del_flg <> 'Y' AND p.del_flg <> 'Y'",
            (guid,),
        )
    }


def vitals_rows(raw_db, guid: str) -> set[str]:
    return {
        row[0]
        for row in raw_db.execute(
            "SELECT v.vs_guid FROM vitals v JOIN pt_master p ON v.pt_seq = p.pt_seq "
            "WHERE p.pt_guid = ? AND v.del_flg <> 'Y' AND p.del_flg <> 'Y'",
            (guid,),
        )
    }


def walk(client, token: str, path: str) -> list[str]:
    """Every id over all pages, following next links."""
    ids: list[str] = []
    url = path
    while url:
        response = client.get(url.replace("http://testserver", ""), headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        bundle = response.get_json()
        ids += [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return ids


def test_patient_token_searches_only_its_patient(client, mint, raw_db, patients):
    p, _q = patients
    token = mint.token("launch/patient patient/Observation.rs", patient=p)
    ids = walk(client, token, "/fhir/Observation?_count=97")
    assert len(ids) == len(set(ids))
    one_per_row = {i for i in ids if len(i) == 36}
    assert one_per_row == lab_ids(raw_db, p) | smoking_ids(raw_db, p) | occupation_ids(raw_db, p)
    several_per_row = {i[:36] for i in ids if len(i) > 36}
    assert vitals_rows(raw_db, p) <= several_per_row
    # and nothing else: the rest are this patient's OB answers and Hunger Vital Sign forms
    own = vitals_rows(raw_db, p) | rows_of(raw_db, "ob_hx", "ob_guid", p) | rows_of(raw_db, "hvs_form", "hvs_guid", p)
    assert several_per_row <= own


def test_other_patients_data_is_not_found_or_empty(client, mint, raw_db, patients):
    # H6: no data of Q through a token for P, and no hint that it exists (404, not 403).
    p, q = patients
    token = mint.token("patient/Observation.rs patient/Patient.rs", patient=p)
    assert client.get(f"/fhir/Patient/{q}", headers=bearer(token)).status_code == 404
    assert client.get("/fhir/Patient/no-such-patient", headers=bearer(token)).status_code == 404
    assert client.get(f"/fhir/Patient/{p}", headers=bearer(token)).status_code == 200
    q_lab = sorted(lab_ids(raw_db, q))[0]
    p_lab = sorted(lab_ids(raw_db, p))[0]
    assert client.get(f"/fhir/Observation/{q_lab}", headers=bearer(token)).status_code == 404
    assert client.get(f"/fhir/Observation/{p_lab}", headers=bearer(token)).status_code == 200
    for query in (f"patient={q}", f"subject=Patient/{q}", f"_id={q_lab}"):
        bundle = client.get(f"/fhir/Observation?{query}", headers=bearer(token)).get_json()
        assert bundle["resourceType"] == "Bundle" and "entry" not in bundle, query
    bundle = client.get(f"/fhir/Patient?_id={q}", headers=bearer(token)).get_json()
    assert "entry" not in bundle
    assert client.post("/fhir/Observation/_search", data={"patient": q}, headers=bearer(token)).get_json().get("entry") is None
    count = client.get("/fhir/Observation?_summary=count", headers=bearer(token)).get_json()["total"]
    assert count == len(walk(client, token, "/fhir/Observation?_count=500"))


def test_hand_edited_paging_links_do_not_cross_patients(client, mint, patients):
    p, q = patients
    token_p = mint.token("patient/Observation.rs", patient=p)
    token_q = mint.token("patient/Observation.rs", patient=q)
    bundle = client.get("/fhir/Observation?_count=2", headers=bearer(token_p)).get_json()
    # The same query text under Q's token runs Q's plan, not P's cached one.
    q_bundle = client.get("/fhir/Observation?_count=2", headers=bearer(token_q)).get_json()
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {f"Patient/{p}"}
    assert {e["resource"]["subject"]["reference"] for e in q_bundle["entry"]} == {f"Patient/{q}"}
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    path = next_url.replace("http://testserver", "")
    assert client.get(path, headers=bearer(token_p)).status_code == 200
    # P's cursor under Q's token: the cursor's fingerprint covers P's compartment, so it is refused.
    stolen = client.get(path, headers=bearer(token_q))
    assert stolen.status_code == 400 and "_cursor" in stolen.get_json()["issue"][0]["diagnostics"]
    # P's link with Q named in it: refused as well, and without the cursor simply empty.
    parts = urlsplit(path)
    edited = parts.path + "?" + urlencode(parse_qsl(parts.query) + [("patient", q)])
    assert client.get(edited, headers=bearer(token_p)).status_code == 400
    without_cursor = [(k, v) for k, v in parse_qsl(parts.query) if k != "_cursor"] + [("patient", q)]
    assert "entry" not in client.get(parts.path + "?" + urlencode(without_cursor), headers=bearer(token_p)).get_json()


def test_granular_category_scope_narrows_the_sql(app, client, mint, raw_db, patients):
    # H11/H12: a laboratory-only scope returns exactly the patient's lab results, and the
    # vital-sign tables are not even in the statement.
    p, _q = patients
    token = mint.token(f"patient/Observation.rs?category={LAB}", patient=p)
    adapter = app.extensions["fhir_facade"].adapter
    with count_statements(adapter.engine) as statements:
        assert client.get("/fhir/Observation?_count=50", headers=bearer(token)).status_code == 200
    ids = set(walk(client, token, "/fhir/Observation?_count=500"))
    assert ids == lab_ids(raw_db, p)
    [statement] = statements
    assert "lab_result" in statement and "vitals" not in statement and "pt_guid" in statement
    assert "entry" not in client.get(f"/fhir/Observation?category={VITALS}", headers=bearer(token)).get_json()
    vital_id = client.get(
        f"/fhir/Observation?category={VITALS}&_count=1", headers=bearer(mint.token("patient/Observation.rs", patient=p))
    ).get_json()["entry"][0]["resource"]["id"]
    assert client.get(f"/fhir/Observation/{vital_id}", headers=bearer(token)).status_code == 404
    assert client.get(f"/fhir/Observation/{sorted(ids)[0]}", headers=bearer(token)).status_code == 200
    total = client.get("/fhir/Observation?_total=accurate&_count=1", headers=bearer(token)).get_json()["total"]
    assert total == len(ids)


def test_several_granular_scopes_are_an_or_in_sql(client, mint, raw_db, patients):
    p, _q = patients
    scopes = f"patient/Observation.rs?category={LAB} patient/Observation.rs?code=http://loinc.org|8867-4"
    ids = walk(client, mint.token(scopes, patient=p), "/fhir/Observation?_count=200")
    heart_rates = {
        row[0]
        for row in raw_db.execute(
            "SELECT v.vs_guid FROM vitals v JOIN pt_master p ON v.pt_seq = p.pt_seq "
            "WHERE p.pt_guid = ? AND v.del_flg <> 'Y' AND v.pulse IS NOT NULL",
            (p,),
        )
    }
    assert {i for i in ids if len(i) == 36} == lab_ids(raw_db, p)
    assert {i[:36] for i in ids if len(i) > 36} == heart_rates and heart_rates


def test_user_scope_with_granular_filter_counts_like_sql(client, mint, raw_db):
    token = mint.token(f"user/Observation.rs?category={LAB}")
    total = client.get("/fhir/Observation?_summary=count", headers=bearer(token)).get_json()["total"]
    expected = raw_db.execute(
        "SELECT count(*) FROM lab_result r JOIN pt_master p ON r.pt_seq = p.pt_seq WHERE r.del_flg <> 'Y' AND p.del_flg <> 'Y'"
    ).fetchone()[0]
    assert total == expected


def test_interactions_and_types_are_checked(client, mint, raw_db, patients):
    # H2/H8: read needs r, search needs s; a type not granted is 403; writes are not served (405).
    p, _q = patients
    lab = sorted(lab_ids(raw_db, p))[0]
    read_only = mint.token("patient/Observation.r", patient=p)
    assert client.get(f"/fhir/Observation/{lab}", headers=bearer(read_only)).status_code == 200
    refused = client.get(f"/fhir/Observation?patient={p}", headers=bearer(read_only))
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    search_only = mint.token("patient/Observation.s", patient=p)
    assert client.get(f"/fhir/Observation/{lab}", headers=bearer(search_only)).status_code == 403
    assert client.get(f"/fhir/Observation?patient={p}", headers=bearer(search_only)).status_code == 200
    observations_only = mint.token("patient/Observation.rs", patient=p)
    assert client.get(f"/fhir/Patient?_id={p}", headers=bearer(observations_only)).status_code == 403
    v1 = mint.token("launch/patient patient/*.read", patient=p)  # H3: v1 read ⇒ rs
    assert client.get(f"/fhir/Patient/{p}", headers=bearer(v1)).status_code == 200
    assert client.get("/fhir/Observation?_count=1", headers=bearer(v1)).status_code == 200
    assert (
        client.post(
            "/fhir/Observation", json={"resourceType": "Observation"}, headers=bearer(mint.token("patient/*.cruds", patient=p))
        ).status_code
        == 405
    )
    malformed = mint.token("patient/Observation.sr", patient=p)  # H1: out of order grants nothing
    assert client.get("/fhir/Observation", headers=bearer(malformed)).status_code == 403


def test_unenforceable_scopes_are_400_never_wider(client, mint, patients):
    p, _q = patients
    for scope, patient in [
        ("patient/Observation.rs?unknown=1", p),  # a filter the mapping cannot evaluate
        ("patient/Observation.rs?_count=5", p),  # not a filter at all
        ("patient/Observation.rs", None),  # a patient scope without a patient
    ]:
        response = client.get("/fhir/Observation", headers=bearer(mint.token(scope, patient=patient)))
        assert response.status_code == 400, scope
        assert response.get_json()["issue"][0]["code"] == "not-supported"
    # With an unrestricted scope for the type beside it, the other scope adds nothing to refuse.
    both = mint.token("patient/Observation.rs?unknown=1 user/Observation.rs", patient=p)
    assert client.get("/fhir/Observation?_count=1", headers=bearer(both)).status_code == 200


def test_service_choke_point_narrows_searches_made_on_a_clients_behalf(app, raw_db, patients):
    # Includes, $everything and any other search the service makes go through FhirService.run (Access.narrow, then the adapter).
    p, q = patients
    service = app.extensions["fhir_facade"].service
    access = Access(Grant(scopes=parse_scopes(f"patient/Observation.rs?category={LAB}"), patient=p), service.adapter.search_params)
    page = service.run(SearchRequest("Observation", count=5000), access)
    assert {r["id"] for r in page.resources} == lab_ids(raw_db, p)
    # A request that arrives already carrying other restrictions gets the grant's, not its own.
    from facade.search.compartment import patient_compartment_clause

    forged = SearchRequest("Observation", count=5000, restrictions=(((patient_compartment_clause("Observation", q),),),))
    assert {r["id"] for r in service.run(forged, access).resources} == lab_ids(raw_db, p)
