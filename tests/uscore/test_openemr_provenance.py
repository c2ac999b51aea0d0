"""US Core Provenance in the OpenEMR mapping, from OpenEMR's real DDL in MariaDB: one per served
row whose table says when it was recorded, searchable by patient and target, so
``_revinclude=Provenance:target`` works on every patient-compartment type; checked against SQL
and the US Core 6.1 Provenance profile."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from fhir.resources.R4B import get_fhir_model_class

from facade.app import create_app
from facade.config import Settings
from facade.search.parser import parse_search
from legacy_adapters.engines import create_legacy_engine
from legacy_adapters.mapping.loader import load_mapping
from legacy_adapters.sql_adapter import SqlAdapter
from support.fhir_client import get_json, walk
from support.openemr_fixture import MAPPING, text_id, uid
from support.smart_tokens import BASE, TokenMint, bearer
from support.sql_statements import count_statements, page_through, selects

PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"
AUTHOR = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author"}]
}
TRANSMITTER = {
    "coding": [
        {
            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type",
            "code": "transmitter",
            "display": "Transmitter",
        }
    ]
}
# Every patient-compartment type the mapping serves whose rows say when they were recorded.
COVERED = [
    "Patient",
    "RelatedPerson",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "Procedure",
    "Device",
    "MedicationRequest",
    "Immunization",
    "Observation",
    "DiagnosticReport",
    "DocumentReference",
    "ServiceRequest",  # its id is the order line's ("10-2"), not a uuid
]
# insurance_data has no recording time (see docs/mapping/openemr.md)
UNCOVERED = ["Coverage"]

# Served rows whose table holds no usable time: laboratory rows of a report without a date, prescriptions
# with neither date. (The queries repeat only the dates; the other conditions are the types' own.)
UNDATED = {
    "Observation": "SELECT r.uuid FROM procedure_result r JOIN procedure_report rp ON rp.procedure_report_id = r.procedure_report_id "
    "WHERE r.uuid IS NOT NULL AND (rp.date_report IS NULL OR rp.date_report < '0001-01-01')",
    "DiagnosticReport": "SELECT rp.uuid FROM procedure_report rp WHERE rp.uuid IS NOT NULL "
    "AND (rp.date_report IS NULL OR rp.date_report < '0001-01-01')",
    "MedicationRequest": "SELECT uuid FROM prescriptions WHERE uuid IS NOT NULL "
    "AND (date_modified IS NULL OR date_modified < '0001-01-01') AND (date_added IS NULL OR date_added < '0001-01-01')",
    "ServiceRequest": "SELECT CONCAT(oc.procedure_order_id, '-', oc.procedure_order_seq) FROM procedure_order_code oc "
    "JOIN procedure_order o ON o.procedure_order_id = oc.procedure_order_id WHERE o.date_ordered IS NULL OR o.date_ordered < '0001-01-01'",
}
NOTES = "SELECT uuid FROM form_clinical_notes WHERE uuid IS NOT NULL"

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def client(openemr_client):
    return openemr_client


def _sql_uuids(openemr, statement: str) -> set[str]:
    """The ids a query selects: binary uuids as their text, text as it is."""
    with openemr[1].connect() as connection:
        rows = [row[0] for row in connection.execute(sa.text(statement)) if row[0]]
    return {value if isinstance(value, str) else str(uuid.UUID(bytes=value)) for value in rows if isinstance(value, str) or any(value)}


def _matches(client, url: str) -> dict[str, dict]:
    return {
        e["resource"]["id"]: e["resource"] for page in walk(client, url) for e in page.get("entry", []) if e["search"]["mode"] == "match"
    }


def _target(provenance: dict) -> tuple[str, str]:
    (target,) = provenance["target"]
    kind, _, ident = target["reference"].partition("/")
    return kind, ident


def _provenance_id(openemr, kind: str, ident: str) -> str:
    """The id of the Provenance of a served resource: its own id, but a note served as a report too
    has that one's Provenance end in '-report'."""
    return ident + "-report" if kind == "DiagnosticReport" and ident in _sql_uuids(openemr, NOTES) else ident


@pytest.fixture(scope="module")
def dated(client, openemr) -> dict[str, set[str]]:
    """Per covered type, the ids of the served resources whose row has a recording time."""
    return {
        kind: set(_matches(client, f"/fhir/{kind}?_count=50")) - _sql_uuids(openemr, UNDATED.get(kind, "SELECT NULL FROM DUAL WHERE 1 = 0"))
        for kind in COVERED
    }


def test_one_provenance_per_dated_row_meeting_the_profile(client, openemr, checker, dated):
    served = _matches(client, "/fhir/Provenance?_count=7")  # several pages
    targets: dict[str, set[str]] = {}
    for ident, provenance in served.items():
        get_fhir_model_class("Provenance").model_validate(provenance)
        assert provenance["meta"]["profile"] == [PROFILE]
        assert checker.problems(provenance) == [], ident
        kind, target = _target(provenance)
        assert ident == _provenance_id(openemr, kind, target)
        targets.setdefault(kind, set()).add(target)
        assert get_json(client, f"/fhir/Provenance/{ident}") == provenance
    assert targets == {kind: ids for kind, ids in dated.items() if ids}
    assert set(targets) == set(COVERED)
    for kind, undated in UNDATED.items():  # the fixture has such rows: they get none
        assert not (_sql_uuids(openemr, undated) & targets[kind]), kind


def test_author_is_the_recording_practitioner_else_the_practice(client, openemr):
    practice = {"reference": "Organization/" + text_id("fac-main")}  # the primary business entity
    house = {"reference": "Practitioner/" + text_id("user-house")}  # ghouse has an NPI

    def agents(ident: str) -> list[dict]:
        return get_json(client, f"/fhir/Provenance/{ident}")["agent"]

    by_practice = [{"type": AUTHOR, "who": practice}, {"type": TRANSMITTER, "who": practice}]
    by_house = [{"type": AUTHOR, "who": house, "onBehalfOf": practice}, {"type": TRANSMITTER, "who": practice}]
    assert agents(text_id("pat-jane")) == by_practice  # patient_data names no recording user
    assert agents(text_id("enc-1")) == by_practice  # nor form_encounter (provider_id saw the patient)
    assert agents(text_id("note-progress")) == by_house  # form_clinical_notes.user = 'ghouse'
    assert agents(text_id("rep-2")) == by_practice  # procedure_report.source names no user
    condition = next(iter(_matches(client, f"/fhir/Condition?patient={text_id('pat-jane')}&_count=1")))
    assert agents(condition) == by_house  # lists.user
    vital = next(iter(_matches(client, f"/fhir/Observation?category=vital-signs&patient={text_id('pat-jane')}&_count=1")))
    assert agents(vital) == by_house  # form_vitals.user
    assert agents("10-1") == by_house  # procedure_order.provider_id, a users.id
    assert agents("11-1") == by_practice  # a user without an NPI

    # a user without an NPI is no Practitioner: the practice is the author
    with openemr[1].begin() as connection:
        connection.execute(sa.text("UPDATE lists SET user = 'oldnurse' WHERE uuid = :u"), {"u": uuid.UUID(condition).bytes})
    try:
        assert agents(condition) == by_practice
    finally:
        with openemr[1].begin() as connection:
            connection.execute(sa.text("UPDATE lists SET user = 'ghouse' WHERE uuid = :u"), {"u": uuid.UUID(condition).bytes})

    for table, column, name in [("patient_data", "last_updated", "pat-jane"), ("form_encounter", "last_update", "enc-1")]:
        with openemr[1].connect() as connection:
            (when,) = connection.execute(sa.text(f"SELECT {column} FROM {table} WHERE uuid = :u"), {"u": uid(name).bytes}).one()
        recorded = get_json(client, f"/fhir/Provenance/{text_id(name)}")["recorded"]
        assert recorded == when.strftime("%Y-%m-%dT%H:%M:%SZ")  # the row's update time (the server's zone: UTC)


def test_pages_sort_uuid_and_order_line_ids_as_one_text_order(client):
    """The type mixes binary uuid ids and text ids ('10-2'): _id sorts them as the text served,
    both ways, and next and previous links neither skip nor repeat across the two kinds."""
    pages = walk(client, "/fhir/Provenance?_count=7")
    ids = [e["resource"]["id"] for page in pages for e in page["entry"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert any("-" in i and len(i) < 36 for i in ids) and any(len(i) == 36 for i in ids)
    descending = [e["resource"]["id"] for page in walk(client, "/fhir/Provenance?_count=7&_sort=-_id") for e in page["entry"]]
    assert descending == ids[::-1]
    last = pages[-1]
    backwards = []
    while True:
        backwards = [e["resource"]["id"] for e in last["entry"]] + backwards
        previous = next((link["url"] for link in last["link"] if link["relation"] == "previous"), None)
        if previous is None:
            break
        last = get_json(client, previous)
    assert backwards == ids


@pytest.mark.parametrize("kind", COVERED)
def test_revinclude_returns_exactly_the_provenance_of_the_page(client, openemr, dated, kind):
    pages = walk(client, f"/fhir/{kind}?_count=3&_revinclude=Provenance:target")
    assert len(pages) > 1 or kind in ("RelatedPerson", "Device", "Immunization", "Procedure", "AllergyIntolerance", "DocumentReference")
    for page in pages:
        entries = page.get("entry", [])
        matched = {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"}
        included = {e["resource"]["id"]: e["resource"] for e in entries if e["search"]["mode"] == "include"}
        assert all(p["resourceType"] == "Provenance" for p in included.values())
        assert set(included) == {_provenance_id(openemr, kind, ident) for ident in matched & dated[kind]}
        assert {_target(p) for p in included.values()} == {(kind, ident) for ident in matched & dated[kind]}


def test_capability_statement_lists_the_revinclude_for_the_covered_types(client):
    resources = {r["type"]: r for r in get_json(client, "/fhir/metadata")["rest"][0]["resource"]}
    for kind in COVERED:
        assert "Provenance:target" in resources[kind].get("searchRevInclude", []), kind
    for kind in UNCOVERED:
        assert "Provenance:target" not in resources[kind].get("searchRevInclude", []), kind
    assert {p["name"] for p in resources["Provenance"]["searchParam"]} >= {"patient", "target", "_id"}
    assert PROFILE in resources["Provenance"].get("supportedProfile", [])


def _patient_targets(client, patient: str) -> set[tuple[str, str]]:
    """Every covered resource of a patient (by each type's own patient search)."""
    found = {("Patient", patient)}
    for kind in COVERED[1:]:
        found |= {(kind, ident) for ident in _matches(client, f"/fhir/{kind}?patient={patient}&_count=50")}
    return found


@pytest.mark.parametrize("name", ["pat-jane", "pat-john", "pat-zoe"])
def test_patient_search_finds_the_provenance_of_the_patients_records(client, dated, name):
    patient = text_id(name)
    expected = {(kind, ident) for kind, ident in _patient_targets(client, patient) if ident in dated[kind]}
    found = {_target(p) for p in _matches(client, f"/fhir/Provenance?patient={patient}&_count=4").values()}
    assert found == expected and found
    by_target = _matches(client, f"/fhir/Provenance?target=Patient/{patient}")
    assert [_target(p) for p in by_target.values()] == [("Patient", patient)]


def test_a_patient_token_sees_only_its_own_provenance(client, openemr, state_url):
    jane, john = text_id("pat-jane"), text_id("pat-john")
    own = set(_matches(client, f"/fhir/Provenance?patient={jane}&_count=50"))
    mint = TokenMint()
    app = create_app(Settings(database_url=openemr[0], mapping=MAPPING, base_url=BASE, state_url=state_url))
    app.extensions["fhir_facade"].auth.validator.keys = mint.jwks
    secured = app.test_client()
    token = bearer(mint.token("patient/Provenance.rs patient/Condition.rs", patient=jane))
    seen = {e["resource"]["id"] for page in walk(secured, "/fhir/Provenance?_count=50", headers=token) for e in page.get("entry", [])}
    assert seen == own
    assert secured.get(f"/fhir/Provenance?patient={john}", headers=token).get_json().get("entry", []) == []
    assert secured.get(f"/fhir/Provenance/{john}", headers=token).status_code == 404
    assert secured.get(f"/fhir/Provenance/{jane}", headers=token).status_code == 200
    bundle = secured.get("/fhir/Condition?_revinclude=Provenance:target", headers=token).get_json()
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert included and {p["id"] for p in included} <= own
    app.extensions["fhir_facade"].adapter.engine.dispose()


def test_pages_and_target_searches_are_one_select_each(openemr):
    engine = create_legacy_engine(openemr[0])
    adapter = SqlAdapter(load_mapping(MAPPING), engine)
    adapter.bound()
    for pairs in ([("patient", text_id("pat-jane"))], [("target", f"Condition/{text_id('prob-dm')},Encounter/{text_id('enc-1')}")]):
        request = parse_search("Provenance", [*pairs, ("_count", "3")], adapter.search_params("Provenance"))
        with count_statements(engine) as sent:
            pages = page_through(adapter, request)
        assert len(selects(sent)) == pages, (pairs, pages, len(selects(sent)))
    engine.dispose()
