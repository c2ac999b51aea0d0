"""The demo mapping served from PostgreSQL answers exactly as it does from SQLite.

Both databases are generated from the same seed and size; the PostgreSQL copy
lives in its own schema of the shared ``test`` database and the façade reaches
it through ``search_path`` in the URL, which ``create_legacy_engine`` must merge
with its own session options rather than drop.
"""

from __future__ import annotations

import contextlib
import sqlite3
from urllib.parse import urlsplit

import orjson
import pytest
import sqlalchemy as sa

from legacy_adapters.engines import create_legacy_engine
from legacy_adapters.sources.demo.generate import CHRONIC_SEQ
from support.pg_demo import DEMO_SCHEMA, PG_DEMO_PATIENTS

pytestmark = pytest.mark.postgres

BASE = "http://testserver/fhir"
MAX_PAGES = 500


@pytest.fixture(scope="module")
def guids(sqlite_demo) -> dict[str, list[str]]:
    """Patient ids of interest, taken straight from the legacy table."""
    with contextlib.closing(sqlite3.connect(f"file:{sqlite_demo}?mode=ro", uri=True)) as conn:

        def col(sql: str) -> list[str]:
            return [g for (g,) in conn.execute(sql)]

        return {
            "chronic": col(f"SELECT pt_guid FROM pt_master WHERE pt_seq = {CHRONIC_SEQ}"),
            "typical": col("""SELECT p.pt_guid FROM pt_master p JOIN lab_result r ON r.pt_seq = p.pt_seq
                              WHERE p.del_flg = 'N' AND p.pt_seq > 1 GROUP BY p.pt_guid
                              ORDER BY count(*) DESC, p.pt_guid LIMIT 1"""),  # the longest history after the chronic one
            "merged": col("SELECT pt_guid FROM pt_master WHERE merged_to_seq IS NOT NULL AND del_flg = 'N' ORDER BY pt_seq LIMIT 2"),
            "junk_dob": col("SELECT pt_guid FROM pt_master WHERE dob IN ('', '00000000') AND del_flg = 'N' ORDER BY pt_seq LIMIT 2"),
            "deleted": col("SELECT pt_guid FROM pt_master WHERE del_flg = 'Y' ORDER BY pt_seq LIMIT 1"),
            "sample": col("SELECT pt_guid FROM pt_master WHERE del_flg = 'N' ORDER BY pt_seq LIMIT 5"),
        }


def _get(client, url: str):
    response = client.get(url)
    return response.status_code, orjson.loads(response.data)


def _walk(client, url: str) -> list[dict]:
    """Every page of a search, following next links (which must point back at this server)."""
    pages = []
    while url:
        status, bundle = _get(client, url)
        assert status == 200, bundle
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
        pages.append(bundle)
        assert len(pages) <= MAX_PAGES, "paging does not end"
        nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if nxt:
            parts = urlsplit(nxt[0])
            assert nxt[0].startswith(BASE + "/"), nxt[0]
            url = f"{parts.path}?{parts.query}"
        else:
            url = None
    return pages


def _by_id(pages: list[dict]) -> list[dict]:
    resources = [entry["resource"] for page in pages for entry in page.get("entry", [])]
    ids = [r["id"] for r in resources]
    assert len(ids) == len(set(ids)), "a resource appeared on two pages"
    return sorted(resources, key=lambda r: r["id"])


def _same_search(pg, lite, url: str, *, page_size: int) -> list[dict]:
    pg_pages, lite_pages = _walk(pg, url), _walk(lite, url)
    pg_resources, lite_resources = _by_id(pg_pages), _by_id(lite_pages)
    assert [r["id"] for r in pg_resources] == [r["id"] for r in lite_resources]
    assert pg_resources == lite_resources
    # and as JSON text, where 70 and 70.0 differ
    assert orjson.dumps(pg_resources, option=orjson.OPT_SORT_KEYS) == orjson.dumps(lite_resources, option=orjson.OPT_SORT_KEYS)
    assert all(len(p.get("entry", [])) <= page_size for p in pg_pages + lite_pages)
    assert len(pg_pages) == len(lite_pages)
    return pg_resources


def test_engine_merges_url_options_with_its_own(pg_demo_url):
    engine = create_legacy_engine(pg_demo_url, statement_timeout_ms=4321)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW search_path").scalar() == DEMO_SCHEMA
            assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "4321ms"
            assert conn.exec_driver_sql("SELECT count(*) FROM pt_master").scalar() == PG_DEMO_PATIENTS
    finally:
        engine.dispose()
    # The URL's options come after the defaults: it may set its own statement timeout
    # (and a later -c wins over an earlier one), but read-only is always applied last.
    url = sa.engine.make_url(pg_demo_url).update_query_dict(
        {"options": "-c statement_timeout=1234 -csearch_path=public", "connect_timeout": "3"}
    )
    engine = create_legacy_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "1234ms"
            assert conn.exec_driver_sql("SHOW search_path").scalar() == "public"
            assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
    finally:
        engine.dispose()


def test_demo_schema_is_separate_from_public(postgres_url, pg_demo_url):
    engine = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            tables = set(
                conn.execute(
                    sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": DEMO_SCHEMA}
                ).scalars()
            )
            assert {"pt_master", "lab_result", "vitals", "enc_visit"} <= tables
    finally:
        engine.dispose()


def test_patient_read(pg, lite, guids):
    ids = guids["chronic"] + guids["merged"] + guids["junk_dob"] + guids["sample"]
    assert len(ids) >= 6
    for guid in ids:
        pg_status, pg_body = _get(pg, f"/fhir/Patient/{guid}")
        lite_status, lite_body = _get(lite, f"/fhir/Patient/{guid}")
        assert (pg_status, lite_status) == (200, 200), guid
        assert pg_body == lite_body
        assert orjson.dumps(pg_body, option=orjson.OPT_SORT_KEYS) == orjson.dumps(lite_body, option=orjson.OPT_SORT_KEYS)
    for guid in guids["deleted"] + ["no-such-patient"]:
        assert _get(pg, f"/fhir/Patient/{guid}") == _get(lite, f"/fhir/Patient/{guid}")
        assert _get(pg, f"/fhir/Patient/{guid}")[0] == 404


@pytest.mark.parametrize("query", ["name=smith", "name=O'CONNOR", "family=de%20la", "given=jean-"])
def test_patient_name_search(pg, lite, query):
    found = _same_search(pg, lite, f"/fhir/Patient?{query}&_count=20", page_size=20)
    assert found  # every one of these names occurs in the 200-patient demo


def test_observations_of_one_patient_paged(pg, lite, guids):
    guid = guids["typical"][0]
    found = _same_search(pg, lite, f"/fhir/Observation?patient={guid}&_count=50", page_size=50)
    assert len(found) > 100  # several pages
    assert {r["subject"]["reference"] for r in found} == {f"Patient/{guid}"}


def test_observation_code_search(pg, lite):
    found = _same_search(pg, lite, "/fhir/Observation?code=http://loinc.org|2345-7&_count=100", page_size=100)
    assert len(found) > 100
    for resource in found:
        assert {"system": "http://loinc.org", "code": "2345-7"} in [
            {k: c[k] for k in ("system", "code")} for c in resource["code"]["coding"]
        ]


def test_birthdate_search(pg, lite):
    found = _same_search(pg, lite, "/fhir/Patient?birthdate=lt1950&_count=100", page_size=100)
    assert found
    assert all(r["birthDate"] < "1950" for r in found)


def test_decimals_render_alike(pg, lite):
    """Byte-identical JSON: NUMERIC(10,3) ref_low once rendered 70 from SQLite but 70.0 from PostgreSQL."""
    url = "/fhir/Observation?code=http://loinc.org|2345-7&_count=5"
    pg_body, lite_body = _get(pg, url)[1], _get(lite, url)[1]
    pg_text = orjson.dumps([e["resource"] for e in pg_body["entry"]], option=orjson.OPT_SORT_KEYS)
    lite_text = orjson.dumps([e["resource"] for e in lite_body["entry"]], option=orjson.OPT_SORT_KEYS)
    assert pg_text == lite_text


US_CORE_SEARCHES = [
    "/fhir/Encounter?date=ge2025-01-01&_count=100",
    "/fhir/Encounter?date=lt2020&class=IMP,EMER&_count=100",
    "/fhir/Condition?category=problem-list-item&clinical-status=active,resolved&_count=100",
    "/fhir/Condition?category=encounter-diagnosis&recorded-date=ge2025&_count=100",
    "/fhir/MedicationRequest?intent=order&status=active,completed&_count=100",
    "/fhir/AllergyIntolerance?clinical-status=active&_count=100",
    "/fhir/Immunization?date=ge2024&status=completed&_count=100",
    "/fhir/Procedure?status=completed,not-done&_count=100",
    "/fhir/Procedure?code=http://www.ama-assn.org/go/cpt|93000&_count=100",
    "/fhir/DiagnosticReport?category=LAB&date=ge2024&_count=100",
    "/fhir/DiagnosticReport?code=http://loinc.org|51990-0&status=final&_count=100",
    "/fhir/Observation?category=social-history&_count=100",
    "/fhir/Provenance?target=Encounter/x,MedicationRequest/y&_count=10",
    "/fhir/Practitioner?_count=7",
    "/fhir/Organization?address=springfield",
    "/fhir/Location?_count=3",
    "/fhir/Medication?_count=5",
]


@pytest.mark.parametrize("url", US_CORE_SEARCHES)
def test_us_core_type_searches(pg, lite, url):
    found = _same_search(pg, lite, url, page_size=int(url.rpartition("_count=")[2]) if "_count=" in url else 20)
    assert found or "Provenance" in url


def test_one_patients_records_paged(pg, lite, guids):
    """Every patient-compartment type for the long-history patient: period dates, collections
    (a report's results, aggregated by each engine's own string function) and Provenance."""
    guid = guids["chronic"][0]
    for resource_type in (
        "Encounter",
        "Condition",
        "MedicationRequest",
        "DiagnosticReport",
        "Immunization",
        "AllergyIntolerance",
        "Procedure",
        "Provenance",
    ):
        found = _same_search(pg, lite, f"/fhir/{resource_type}?patient={guid}&_count=200", page_size=200)
        assert found or resource_type not in ("Encounter", "Condition", "DiagnosticReport", "Provenance"), resource_type
    reports = _same_search(pg, lite, f"/fhir/DiagnosticReport?patient={guid}&_count=200", page_size=200)
    lab = next(r for r in reports if r.get("result"))  # a lab report (the notes that are reports have no results)
    result = lab["result"][0]["reference"]
    assert [r["id"] for r in _same_search(pg, lite, f"/fhir/DiagnosticReport?result={result}", page_size=20)] == [lab["id"]]
