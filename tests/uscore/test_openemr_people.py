"""RelatedPerson (a patient's guardian, patient_data's guardian columns) and PractitionerRole (a
user's facility and specialty) in the OpenEMR mapping, from OpenEMR's real DDL in MariaDB,
checked against SQL and against the US Core 6.1 profiles."""

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
from support.fhir_client import get_json, q, walk
from support.openemr_fixture import MAPPING, text_id
from support.smart_tokens import BASE, TokenMint, bearer
from support.sql_statements import page_through, selects

ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
LOCAL_RELATIONSHIP = "urn:fhir-facade:openemr:next-of-kin-relationship"
V2_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/v2-0063"
NUCC = "http://nucc.org/provider-taxonomy"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def client(openemr_client):
    return openemr_client


def _sql(openemr, statement: str, **params) -> list[tuple]:
    with openemr[1].connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(statement), params)]


def _resources(client, url: str) -> dict[str, dict]:
    return {
        e["resource"]["id"]: e["resource"] for page in walk(client, url) for e in page.get("entry", []) if e["search"]["mode"] == "match"
    }


def _ids(client, url: str) -> set[str]:
    return set(_resources(client, url))


def _guardian(name: str) -> str:
    return text_id(name) + "-guardian"


def _role(name: str) -> str:
    return text_id(name) + "-role"


GUARDIANS = (
    "SELECT p.uuid FROM patient_data p WHERE p.uuid IS NOT NULL AND p.uuid <> REPEAT(CHAR(0), 16) "
    "AND p.guardiansname IS NOT NULL AND p.guardiansname <> ''"
)
ROLES = "SELECT u.uuid FROM users u WHERE u.uuid IS NOT NULL AND u.abook_type = ''"


# --------------------------------------------------------------------------- RelatedPerson
def test_one_related_person_per_patient_with_a_guardian_name(client, openemr, checker):
    expected = {str(uuid.UUID(bytes=row[0])) + "-guardian" for row in _sql(openemr, GUARDIANS)}
    # an empty guardian name, a patient without a uuid (none, or sixteen zero bytes): not served
    assert expected == {_guardian("pat-jane"), _guardian("pat-john"), _guardian("pat-zoe")}
    served = _resources(client, "/fhir/RelatedPerson?_count=1")  # a page per guardian
    assert set(served) == expected
    for person in served.values():
        get_fhir_model_class("RelatedPerson").model_validate(person)
        assert person["meta"]["profile"] == [US_CORE + "us-core-relatedperson"]
        assert checker.problems(person) == [], person["id"]
        assert person["active"] is True and person["patient"]["reference"] == "Patient/" + person["id"].removesuffix("-guardian")
        assert {"coding": [{"system": ROLE_CODE, "code": "GUARD", "display": "guardian"}]} in person["relationship"]

    mary = served[_guardian("pat-jane")]
    assert mary["name"] == [{"text": "Mary Doe"}] and mary["gender"] == "female"
    assert mary["relationship"][0]["coding"] == [
        {"system": ROLE_CODE, "code": "MTH", "display": "mother"},  # the crosswalk's translation of the option id
        {"system": LOCAL_RELATIONSHIP, "code": "mother", "display": "Mother"},
        {"system": V2_RELATIONSHIP, "code": "MTH", "display": "Mother"},  # the list's notes
    ]
    assert mary["telecom"] == [
        {"system": "phone", "value": "555-0201", "use": "home"},
        {"system": "phone", "value": "555-0301", "use": "work"},
        {"system": "email", "value": "mary@example.org", "use": "home"},
    ]
    assert mary["address"] == [{"line": ["1 Elm St"], "city": "Springfield", "state": "IL", "postalCode": "62701"}]
    # a relationship RoleCode has no code for keeps its local and v2 codings
    ann = served[_guardian("pat-zoe")]
    assert ann["relationship"][0]["coding"] == [
        {"system": LOCAL_RELATIONSHIP, "code": "other", "display": "Other"},
        {"system": V2_RELATIONSHIP, "code": "OTH", "display": "Other"},
    ]
    assert "gender" not in ann and "address" not in ann


def test_related_person_reads_and_searches(client):
    jane, john = text_id("pat-jane"), text_id("pat-john")
    assert get_json(client, f"/fhir/RelatedPerson/{_guardian('pat-jane')}")["name"] == [{"text": "Mary Doe"}]
    for missing in (_guardian("pat-kim"), text_id("pat-jane"), _guardian("no-such-patient")):
        assert client.get(f"/fhir/RelatedPerson/{missing}").status_code == 404
    assert _ids(client, f"/fhir/RelatedPerson?_id={_guardian('pat-john')}") == {_guardian("pat-john")}
    assert _ids(client, f"/fhir/RelatedPerson?patient={jane}") == {_guardian("pat-jane")}
    assert _ids(client, f"/fhir/RelatedPerson?patient=Patient/{john}") == {_guardian("pat-john")}
    assert _ids(client, f"/fhir/RelatedPerson?patient={text_id('pat-kim')}") == set()
    # the SHOULD combination patient + name; the name is matched from its start, ignoring case
    assert _ids(client, f"/fhir/RelatedPerson?patient={jane}&name=mary") == {_guardian("pat-jane")}
    assert _ids(client, f"/fhir/RelatedPerson?patient={john}&name=mary") == set()
    assert _ids(client, f"/fhir/RelatedPerson?name={q('Ann Bront')}") == {_guardian("pat-zoe")}
    # relationship: the RoleCode the crosswalk gives, GUARD on all, the v2 code, the option id
    assert _ids(client, f"/fhir/RelatedPerson?relationship={q(ROLE_CODE + '|MTH')}") == {_guardian("pat-jane")}
    assert _ids(client, "/fhir/RelatedPerson?relationship=FTH") == {_guardian("pat-john")}
    assert len(_ids(client, f"/fhir/RelatedPerson?relationship={q(ROLE_CODE + '|GUARD')}&_count=2")) == 3
    assert _ids(client, f"/fhir/RelatedPerson?relationship={q(V2_RELATIONSHIP + '|OTH')}") == {_guardian("pat-zoe")}
    assert _ids(client, f"/fhir/RelatedPerson?relationship={q(LOCAL_RELATIONSHIP + '|other')}") == {_guardian("pat-zoe")}
    assert _ids(client, f"/fhir/RelatedPerson?relationship={q(ROLE_CODE + '|OTH')}") == set()
    assert _ids(client, f"/fhir/RelatedPerson?relationship={q(V2_RELATIONSHIP + '|SPO')}") == set()  # Kim's guardian has no name
    bundle = get_json(client, f"/fhir/RelatedPerson?patient={jane}&_include=RelatedPerson:patient")
    assert {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]} == {
        ("RelatedPerson", "match"),
        ("Patient", "include"),
    }


def test_a_patient_token_reaches_its_own_guardian_only(openemr, state_url):
    mint = TokenMint()
    app = create_app(Settings(database_url=openemr[0], mapping=MAPPING, base_url=BASE, state_url=state_url))
    app.extensions["fhir_facade"].auth.validator.keys = mint.jwks
    secured = app.test_client()
    token = bearer(mint.token("patient/RelatedPerson.rs", patient=text_id("pat-jane")))
    bundle = secured.get("/fhir/RelatedPerson", headers=token).get_json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [_guardian("pat-jane")]
    assert secured.get(f"/fhir/RelatedPerson?patient={text_id('pat-john')}", headers=token).get_json().get("entry", []) == []
    assert secured.get(f"/fhir/RelatedPerson/{_guardian('pat-john')}", headers=token).status_code == 404
    assert secured.get(f"/fhir/RelatedPerson/{_guardian('pat-jane')}", headers=token).status_code == 200
    app.extensions["fhir_facade"].adapter.engine.dispose()


def test_derived_ids_are_read_through_the_uuid_key_and_pages_are_one_select(openemr):
    """'<uuid>-guardian' and '<uuid>-role' are searched as the 16 bytes of the owner's uuid (EXPLAIN:
    the uuid key, no scan); a page of either type is one SELECT."""
    engine = create_legacy_engine(openemr[0])
    sent: list[tuple] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, params, *_: sent.append((statement, params)))
    adapter = SqlAdapter(load_mapping(MAPPING), engine)
    adapter.bound()
    for resource_type, ident, alias in [("RelatedPerson", _guardian("pat-jane"), "p"), ("PractitionerRole", _role("user-house"), "u")]:
        sent.clear()
        assert adapter.read(resource_type, ident)["id"] == ident
        (statement, params), *more = [s for s in sent if s[0].lstrip().upper().startswith("SELECT")]
        assert not more
        with openemr[1].connect() as connection:
            plan = connection.exec_driver_sql("EXPLAIN " + statement, params).mappings().all()
        assert [row["key"] for row in plan if row["table"] == alias] == ["uuid"], plan
        request = parse_search(resource_type, [("_count", "1")], adapter.search_params(resource_type))
        sent.clear()
        pages = page_through(adapter, request)
        paged = selects([statement for statement, _ in sent])
        assert pages >= 3 and len(paged) == pages, (resource_type, pages, len(paged))
    engine.dispose()


# --------------------------------------------------------------------------- PractitionerRole
def test_one_practitioner_role_per_practitioner(client, openemr, checker):
    expected = {str(uuid.UUID(bytes=row[0])) + "-role" for row in _sql(openemr, ROLES)}
    assert _role("user-house") in expected and _role("user-lab") not in expected  # an address-book entry is no practitioner
    served = _resources(client, "/fhir/PractitionerRole?_count=2")
    assert set(served) == expected and len(expected) >= 5
    for role in served.values():
        get_fhir_model_class("PractitionerRole").model_validate(role)
        assert role["practitioner"] == {"reference": "Practitioner/" + role["id"].removesuffix("-role")}
        assert checker.problems(role) == [], role["id"]
        claimed = role.get("meta", {}).get("profile", [])
        # US Core pd-1: contact details (or an endpoint, which OpenEMR does not keep) before the claim
        assert claimed == ([US_CORE + "us-core-practitionerrole"] if "telecom" in role else [])

    house = served[_role("user-house")]
    assert house["organization"] == {"reference": f"Organization/{text_id('fac-main')}", "display": "Main Street Clinic"}
    assert house["location"] == [{"reference": f"Location/{text_id('loc-main')}"}]
    assert house["specialty"] == [{"coding": [{"system": NUCC, "code": "207R00000X"}], "text": "Diagnostic medicine"}]
    assert house["telecom"] == [{"system": "phone", "value": "555-0100", "use": "work"}]  # the facility's phone
    assert served[_role("user-peds")]["telecom"] == [{"system": "phone", "value": "555-0400", "use": "work"}]  # his own first
    family = served[_role("user-fp")]  # a facility without a uuid: no reference to it
    assert "reference" not in family["organization"] and "location" not in family
    assert family["meta"]["profile"] == [US_CORE + "us-core-practitionerrole"]
    assert "meta" not in served[_role("user-np")] or "profile" not in served[_role("user-np")]["meta"]  # no contact: no claim
    assert served[_role("user-old")]["active"] is False


def test_practitioner_role_searches_and_includes(client, openemr):
    family_medicine = {
        str(uuid.UUID(bytes=row[0])) + "-role" for row in _sql(openemr, ROLES + " AND u.taxonomy = :code", code="207Q00000X")
    }
    assert family_medicine == {_role("user-old"), _role("user-fp")}
    assert _ids(client, f"/fhir/PractitionerRole?specialty={q(NUCC + '|207Q00000X')}&_count=1") == family_medicine
    assert _ids(client, "/fhir/PractitionerRole?specialty=208000000X") == {_role("user-peds")}
    assert _ids(client, f"/fhir/PractitionerRole?specialty={q('http://snomed.info/sct|208000000X')}") == set()
    house = text_id("user-house")
    assert _ids(client, f"/fhir/PractitionerRole?practitioner={house}") == {_role("user-house")}
    assert _ids(client, f"/fhir/PractitionerRole?practitioner=Practitioner/{house}") == {_role("user-house")}
    assert _ids(client, f"/fhir/PractitionerRole?organization={text_id('fac-main')}") == {_role("user-house"), _role("user-peds")}
    assert get_json(client, f"/fhir/PractitionerRole/{_role('user-peds')}")["specialty"][0]["text"] == "Pediatrics"
    assert client.get(f"/fhir/PractitionerRole/{_role('user-lab')}").status_code == 404
    bundle = get_json(client, f"/fhir/PractitionerRole?practitioner={house}&_include=PractitionerRole:practitioner")
    kinds = {(e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in bundle["entry"]}
    assert kinds == {("PractitionerRole", _role("user-house"), "match"), ("Practitioner", house, "include")}


def test_capability_statement_lists_both_with_their_us_core_searches(client):
    resources = {r["type"]: r for r in get_json(client, "/fhir/metadata")["rest"][0]["resource"]}
    related, role = resources["RelatedPerson"], resources["PractitionerRole"]
    assert related["supportedProfile"] == [US_CORE + "us-core-relatedperson"]
    assert role["supportedProfile"] == [US_CORE + "us-core-practitionerrole"]
    assert {"_id", "patient", "name"} <= {p["name"] for p in related["searchParam"]}
    assert {"specialty", "practitioner"} <= {p["name"] for p in role["searchParam"]}
    assert "PractitionerRole:practitioner" in role["searchInclude"]
