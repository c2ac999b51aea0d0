"""The shipped OpenEMR mapping, served from OpenEMR's real DDL in MariaDB.

The DDL is loaded unmodified (tests/support/openemr_fixture.py) with synthetic rows
full of edge cases. Every resource must validate as FHIR R4; every search must return
exactly the ids that SQL written here returns, across pages.
"""

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
from support.fhir_client import entry_ids, get_json, q, walk
from support.openemr_fixture import MAPPING, openemr_ddl_path, text_id
from support.sql_statements import count_statements, page_through, selects

TYPES = [
    "Patient",
    "Observation",
    "DiagnosticReport",
    "Condition",
    "AllergyIntolerance",
    "Procedure",
    "MedicationRequest",
    "Immunization",
    "Encounter",
    "Practitioner",
    "Organization",
    "Location",
    "Coverage",
    "ServiceRequest",
    "RelatedPerson",
    "PractitionerRole",
    "Provenance",
]
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"

pytestmark = pytest.mark.mariadb


def _app(url: str):
    return create_app(Settings(auth_mode="off", database_url=url, mapping=MAPPING, base_url="http://testserver/fhir"))


@pytest.fixture(scope="module")
def client(openemr):
    return _app(openemr[0]).test_client()


@pytest.fixture(scope="module")
def sql(openemr):
    engine = openemr[1]

    def run(statement: str, **params) -> list[tuple]:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(statement), params)]

    return run


def as_text(raw: bytes) -> str:
    return str(uuid.UUID(bytes=raw))


def ids(client, path: str) -> list[str]:
    return [i for page in walk(client, path) for i in entry_ids(page)]


def uuids(rows, suffix: str = "") -> set[str]:
    return {as_text(row[0]) + (row[1] if len(row) > 1 else suffix) for row in rows}


# --------------------------------------------------------------------------- validity
def test_the_ddl_loaded_whole_and_unmodified(sql):
    """All 25 tables of the DDL file and its seed rows (427 list options, as the file's header says),
    plus the tables the project copies beside it (insurance_companies)."""
    assert sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")[0][0] == 25 + 1
    seeded = "SELECT COUNT(*) FROM list_options WHERE list_id <> 'next_of_kin_relationship' AND option_id <> 'next_of_kin_relationship'"
    assert sql(seeded)[0][0] == 427  # the fixture adds the next-of-kin list the subset lacks
    ddl = openemr_ddl_path().read_text(encoding="utf-8")
    assert (
        "`uuid` binary(16)" in ddl
        and sql(
            "SELECT DATA_TYPE FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name = 'patient_data' AND column_name = 'uuid'"
        )[0][0]
        == "binary"
    )


@pytest.mark.parametrize("resource_type", TYPES)
def test_every_resource_validates_and_reads_back(client, resource_type):
    resources = [e["resource"] for page in walk(client, f"/fhir/{resource_type}?_count=4") for e in page.get("entry", [])]
    assert resources, resource_type
    model = get_fhir_model_class(resource_type)
    for resource in resources:
        model.model_validate(resource)
        assert get_json(client, f"/fhir/{resource_type}/{resource['id']}") == resource
    assert len({r["id"] for r in resources}) == len(resources)


def test_ids_are_the_text_form_of_the_uuid_columns_and_stable(openemr, client, sql):
    expected = uuids(sql("SELECT uuid FROM patient_data WHERE uuid <> REPEAT(CHAR(0), 16)"))
    assert set(ids(client, "/fhir/Patient?_count=2")) == expected
    assert text_id("pat-jane") in expected  # fixed fixture uuids: the same on every run
    again = _app(openemr[0]).test_client()  # a fresh process binds the mapping anew
    for path in ("/fhir/Observation?_count=7", "/fhir/Condition?_count=3"):
        assert ids(again, path) == ids(client, path)


# --------------------------------------------------------------------------- ids and exactness
def test_id_search_and_read_by_text_uuid(client, sql):
    jane = text_id("pat-jane")
    assert entry_ids(get_json(client, f"/fhir/Patient?_id={jane}")) == [jane]
    assert get_json(client, f"/fhir/Patient/{jane}")["name"][0]["family"] == "Doe"
    # Other spellings of the same uuid are not this resource's id.
    for other in (jane.upper(), jane.replace("-", ""), "{" + jane + "}", jane + " ", "not-a-uuid"):
        assert entry_ids(get_json(client, f"/fhir/Patient?_id={q(other)}")) == []
        assert client.get(f"/fhir/Patient/{q(other)}").status_code == 404
    # A patient OpenEMR has not given a uuid yet is not served.
    assert sql("SELECT COUNT(*) FROM patient_data WHERE uuid IS NULL OR uuid = REPEAT(CHAR(0), 16)")[0][0] == 2
    assert len(ids(client, "/fhir/Patient")) == sql("SELECT COUNT(*) FROM patient_data WHERE uuid <> REPEAT(CHAR(0), 16)")[0][0]


def test_uuid_reads_and_searches_use_the_unique_index(openemr):
    """The searched text becomes 16 bytes in SQL, so MariaDB uses the uuid key (EXPLAIN), not a scan."""
    engine = create_legacy_engine(openemr[0])
    sent: list[tuple] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, params, *_: sent.append((statement, params)))
    adapter = SqlAdapter(load_mapping(MAPPING), engine)
    jane = text_id("pat-jane")
    adapter.bound()
    sent.clear()
    assert adapter.read("Patient", jane)["id"] == jane
    request = parse_search("Condition", [("_id", text_id("cond-dm"))], adapter.search_params("Condition"))
    assert [r["id"] for r in adapter.search(request).resources] == [text_id("cond-dm")]
    statements = [(statement, params) for statement, params in sent if statement.lstrip().upper().startswith("SELECT")]
    assert len(statements) == 2
    with openemr[1].connect() as connection:
        for statement, params in statements:
            plan = connection.exec_driver_sql("EXPLAIN " + statement, params).mappings().all()
            tables = [row for row in plan if row["table"] and not row["table"].startswith("<")]
            # Each union member finds its row through the uuid key (or MariaDB proved from the key
            # lookup that the member is empty); none scans a table.
            assert all(row["type"] != "ALL" for row in tables), plan
            assert any(row["key"] == "uuid" for row in tables), plan
    engine.dispose()


def test_service_request_ids_are_the_order_line_key(openemr):
    """ServiceRequest ids ("<procedure_order_id>-<procedure_order_seq>") are read through the
    order line's primary key (EXPLAIN), not by scanning and comparing text."""
    engine = create_legacy_engine(openemr[0])
    sent: list[tuple] = []
    sa.event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, params, *_: sent.append((statement, params)))
    adapter = SqlAdapter(load_mapping(MAPPING), engine)
    adapter.bound()
    sent.clear()
    assert adapter.read("ServiceRequest", "10-2")["code"]["text"] == "Hemoglobin A1c"
    statement, params = next((st, pa) for st, pa in sent if st.lstrip().upper().startswith("SELECT"))
    with openemr[1].connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN " + statement, params).mappings().all()
    base = next(row for row in plan if row["table"] == "oc")
    assert base["type"] in ("const", "eq_ref", "ref") and base["key"] == "PRIMARY", plan
    # one row per order line: the compendium join (the order's lab, 'ord' rows) repeats none
    everything = adapter.search(parse_search("ServiceRequest", [("_count", "100")], adapter.search_params("ServiceRequest")))
    found = [r["id"] for r in everything.resources]
    assert len(found) == len(set(found)) and {"11-1", "19-1"} <= set(found)
    engine.dispose()


def test_one_statement_per_page(openemr):
    """Unpivoted vitals, labs and variant-split conditions: every page is one SELECT."""
    engine = create_legacy_engine(openemr[0])
    adapter = SqlAdapter(load_mapping(MAPPING), engine)
    adapter.bound()
    for resource_type, pairs in [
        ("Observation", [("patient", text_id("pat-jane"))]),
        ("Condition", [("clinical-status", "active,resolved")]),
        ("MedicationRequest", []),
        ("ServiceRequest", [("patient", text_id("pat-jane"))]),
    ]:
        request = parse_search(resource_type, [*pairs, ("_count", "2")], adapter.search_params(resource_type))
        with count_statements(engine) as sent:
            pages = page_through(adapter, request)
        assert pages > 1 and len(selects(sent)) == pages, (resource_type, pages, len(selects(sent)))
    engine.dispose()


def test_identifier_is_exact_under_a_case_insensitive_collation(client):
    jane, john = text_id("pat-jane"), text_id("pat-john")
    assert entry_ids(get_json(client, "/fhir/Patient?identifier=MRN0001")) == [jane]
    assert entry_ids(get_json(client, f"/fhir/Patient?identifier={q('urn:fhir-facade:openemr:pubpid|MRN0001')}")) == [jane]
    assert entry_ids(get_json(client, "/fhir/Patient?identifier=mrn0001")) == []
    assert entry_ids(get_json(client, f"/fhir/Patient?identifier={q('MRN0001 ')}")) == []
    assert entry_ids(get_json(client, "/fhir/Patient?identifier=mrn0002")) == [john]
    assert entry_ids(get_json(client, "/fhir/Patient?identifier=MRN0002")) == []
    zoe = text_id("pat-zoe")
    assert entry_ids(get_json(client, f"/fhir/Patient?family:exact={q('Brontë')}")) == [zoe]
    assert entry_ids(get_json(client, f"/fhir/Patient?family:exact={q('Bronte')}")) == []
    assert entry_ids(get_json(client, f"/fhir/Patient?family:exact={q('brontë')}")) == []


def test_patient_gender_and_birthdate(client, sql):
    female = uuids(sql("SELECT uuid FROM patient_data WHERE uuid <> REPEAT(CHAR(0), 16) AND BINARY sex = 'Female'"))
    assert set(ids(client, "/fhir/Patient?gender=female&_count=1")) == female
    unknown = uuids(sql("SELECT uuid FROM patient_data WHERE uuid <> REPEAT(CHAR(0), 16) AND BINARY sex NOT IN ('Female', 'Male')"))
    assert set(ids(client, "/fhir/Patient?gender=unknown")) == unknown
    born = uuids(sql("SELECT uuid FROM patient_data WHERE uuid <> REPEAT(CHAR(0), 16) AND DOB >= '1971-01-01'"))
    assert set(ids(client, "/fhir/Patient?birthdate=ge1971")) == born
    john = get_json(client, f"/fhir/Patient/{text_id('pat-john')}")
    assert "birthDate" not in john  # '0000-00-00' is no date
    missing = uuids(sql("SELECT uuid FROM patient_data WHERE uuid <> REPEAT(CHAR(0), 16) AND (DOB IS NULL OR DOB < '0001-01-01')"))
    assert set(ids(client, "/fhir/Patient?birthdate:missing=true")) == missing


def test_marital_status_and_language_come_from_list_options(openemr, client, sql):
    """patient_data holds list_options option_ids; the code tables give the standard code (notes),
    its display (title) and system, in the page's one statement, and searches by system|code."""
    jane = get_json(client, f"/fhir/Patient/{text_id('pat-jane')}")
    assert jane["maritalStatus"] == {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M", "display": "Married"}]
    }
    assert jane["communication"] == [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en", "display": "English"}]}}]
    kim = get_json(client, f"/fhir/Patient/{text_id('pat-kim')}")
    assert "communication" not in kim and "maritalStatus" not in kim  # 'decline_to_specify' has no code
    zoe = get_json(client, f"/fhir/Patient/{text_id('pat-zoe')}")
    assert zoe["maritalStatus"]["coding"][0]["code"] == "T"  # option 'domestic partner'

    def speakers(code: str) -> set[str]:
        return uuids(
            sql(
                "SELECT p.uuid FROM patient_data p JOIN list_options o ON o.list_id = 'language' AND o.option_id = p.language "
                "WHERE p.uuid <> REPEAT(CHAR(0), 16) AND BINARY o.notes = :code",
                code=code,
            )
        )

    assert (
        set(ids(client, "/fhir/Patient?language=" + q("urn:ietf:bcp:47|en"))) == speakers("en") == {text_id("pat-jane"), text_id("pat-zoe")}
    )
    assert set(ids(client, "/fhir/Patient?language=es")) == speakers("es") == {text_id("pat-john")}
    assert ids(client, "/fhir/Patient?language=" + q("http://loinc.org|en")) == []  # the code table knows its system
    assert set(ids(client, "/fhir/Patient?language:missing=true")) == {text_id("pat-kim")}
    adapter = SqlAdapter(load_mapping(MAPPING), create_legacy_engine(openemr[0]))
    request = parse_search("Patient", [("language", "urn:ietf:bcp:47|en")], adapter.search_params("Patient"))
    sql_text = next(iter(adapter.explain_sql(request).values()))
    assert "p.language = 'English'" in sql_text and "list_options" not in sql_text  # the indexed column, keys from the table
    adapter.engine.dispose()


def test_mapping_check_passes_on_openemr(openemr):
    from click.testing import CliRunner

    from facade.cli import main

    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", MAPPING, "--db", openemr[0]])
    assert run.exit_code == 0 and run.output.rstrip().endswith("OK"), run.output


# --------------------------------------------------------------------------- observations
VITALS = {  # variant → form_vitals column (values above zero are measurements)
    "pulse": "pulse",
    "respiration": "respiration",
    "temperature": "temperature",
    "weight": "weight",
    "height": "height",
    "head-circumference": "head_circ",
    "bmi": "BMI",
    "oxygen-saturation": "oxygen_saturation",
    "oxygen-flow-rate": "oxygen_flow_rate",
    "inhaled-oxygen": "inhaled_oxygen_concentration",
    "pediatric-bmi": "ped_bmi",
    "pediatric-head-circumference": "ped_head_circ",
    "pediatric-weight-for-length": "ped_weight_height",
}
VITALS_FROM = (
    "FROM form_vitals v JOIN forms f ON f.form_id = v.id AND f.formdir = 'vitals' AND f.deleted = 0 "
    "JOIN patient_data p ON p.pid = f.pid WHERE v.uuid IS NOT NULL AND p.uuid <> REPEAT(CHAR(0), 16)"
)


def vitals_sql(extra: str = "") -> str:
    members = [f"SELECT v.uuid, '-{name}' {VITALS_FROM} AND v.{column} > 0 {extra}" for name, column in VITALS.items()]
    members.append(f"SELECT v.uuid, '-blood-pressure' {VITALS_FROM} AND v.bps <> '' AND v.bpd <> '' {extra}")
    anything = " OR ".join([f"v.{column} > 0" for column in VITALS.values()] + ["v.bps <> ''"])
    members.append(f"SELECT v.uuid, '-panel' {VITALS_FROM} AND ({anything}) {extra}")
    return " UNION ALL ".join(members)


LABS_FROM = (
    "FROM procedure_result r JOIN procedure_report rp ON rp.procedure_report_id = r.procedure_report_id "
    "JOIN procedure_order o ON o.procedure_order_id = rp.procedure_order_id JOIN patient_data p ON p.pid = o.patient_id "
    "WHERE r.uuid IS NOT NULL AND p.uuid <> REPEAT(CHAR(0), 16) AND o.activity = 1"
)


def test_vital_signs_are_unpivoted_per_measurement(client, sql):
    jane = text_id("pat-jane")
    expected = uuids(sql(vitals_sql("AND p.uuid = :p"), p=uuid.UUID(jane).bytes))
    got = ids(client, f"/fhir/Observation?patient={jane}&category=vital-signs&_count=3")
    assert len(got) == len(set(got)) and set(got) == expected
    assert f"{text_id('vit-1')}-pulse" in expected and f"{text_id('vit-2')}-blood-pressure" not in expected
    assert client.get(f"/fhir/Observation/{text_id('vit-7')}-pulse").status_code == 404  # its patient has no uuid
    everything = uuids(sql(vitals_sql()))
    assert set(ids(client, "/fhir/Observation?category=vital-signs&_count=5")) == everything


def test_vital_signs_panel_lists_its_members(client):
    panels = [e["resource"] for page in walk(client, f"/fhir/Observation?code={q('http://loinc.org|85353-1')}") for e in page["entry"]]
    assert len(panels) == 4
    everything = set(ids(client, "/fhir/Observation?category=vital-signs&_count=50"))
    for panel in panels:
        row = panel["id"].removesuffix("-panel")
        members = {m["reference"].removeprefix("Observation/") for m in panel.get("hasMember", [])}
        assert members == {i for i in everything if i.startswith(row) and i != panel["id"]}, panel["id"]
        assert members


def test_vital_sign_codes_values_and_dates(client, sql):
    heart = uuids(sql(f"SELECT v.uuid, '-pulse' {VITALS_FROM} AND v.pulse > 0"))
    assert set(ids(client, f"/fhir/Observation?code={q('http://loinc.org|8867-4')}&_count=2")) == heart
    bp = get_json(client, f"/fhir/Observation/{text_id('vit-1')}-blood-pressure")
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [120, 80] and "valueQuantity" not in bp
    weight = get_json(client, f"/fhir/Observation/{text_id('vit-1')}-weight")
    assert weight["valueQuantity"] == {"value": 150.5, "unit": "lb", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}
    assert weight["effectiveDateTime"] == "2024-03-01T09:05:00+00:00"
    assert weight["encounter"] == {"reference": f"Encounter/{text_id('enc-1')}"}
    assert "effectiveDateTime" not in get_json(client, f"/fhir/Observation/{text_id('vit-4')}-pulse")  # zero date
    assert client.get(f"/fhir/Observation/{text_id('vit-1')}-head-circumference").status_code == 404  # 0 = not measured
    assert client.get(f"/fhir/Observation/{text_id('vit-3')}-pulse").status_code == 404  # deleted form
    dated = uuids(sql(vitals_sql("AND v.date >= '2024-03-01' AND v.date < '2024-03-02'")))
    assert set(ids(client, "/fhir/Observation?category=vital-signs&date=2024-03-01&_count=4")) == dated


def test_laboratory_results(client, sql):
    expected = uuids(sql(f"SELECT r.uuid {LABS_FROM}"))
    assert set(ids(client, "/fhir/Observation?category=laboratory&_count=2")) == expected
    glucose = uuids(sql(f"SELECT r.uuid {LABS_FROM} AND BINARY r.result_code = '2345-7'"))
    assert set(ids(client, f"/fhir/Observation?code={q('http://loinc.org|2345-7')}")) == glucose
    assert text_id("res-del") not in glucose | expected  # deleted order
    jane = text_id("pat-jane")
    janes = uuids(sql(f"SELECT r.uuid {LABS_FROM} AND p.uuid = :p", p=uuid.UUID(jane).bytes))
    assert set(ids(client, f"/fhir/Observation?subject=Patient/{jane}&category=laboratory")) == janes
    final = uuids(sql(f"SELECT r.uuid {LABS_FROM} AND BINARY r.result_status = 'final'"))
    assert set(ids(client, "/fhir/Observation?category=laboratory&status=final")) == final
    unknown = uuids(
        sql(
            f"SELECT r.uuid {LABS_FROM} AND r.result_status NOT IN ('final','preliminary','corrected','amended',"
            "'cancelled','registered','entered-in-error')"
        )
    )
    assert set(ids(client, "/fhir/Observation?category=laboratory&status=unknown")) == unknown
    low = get_json(client, f"/fhir/Observation/{text_id('res-glu-2')}")
    assert low["valueQuantity"] == {"value": 40, "comparator": "<", "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    assert low["interpretation"][0]["coding"][0]["code"] == "LL" and low["status"] == "corrected"
    assert get_json(client, f"/fhir/Observation/{text_id('res-hcg')}")["valueString"] == "Negative"


def test_observations_sorted_by_date_page_without_gaps(client, sql):
    everything = uuids(sql(vitals_sql())) | uuids(sql(f"SELECT r.uuid {LABS_FROM}"))
    everything |= {
        f"{u}-occupation" for u in uuids(sql("SELECT p.uuid FROM patient_data p WHERE p.uuid IS NOT NULL AND p.occupation != ''"))
    }
    for sort in ("date", "-date"):
        got = ids(client, f"/fhir/Observation?_sort={sort}&_count=3")
        assert len(got) == len(set(got)) and set(got) == everything, sort


# --------------------------------------------------------------------------- conditions and allergies
PROBLEMS = "FROM lists l JOIN patient_data p ON p.pid = l.pid WHERE BINARY l.type = 'medical_problem' AND l.uuid IS NOT NULL AND p.uuid <> REPEAT(CHAR(0), 16)"
# OpenEMR's clinical status rule, written out in SQL.
STATUS = (
    "CASE WHEN l.enddate >= '0001-01-01' THEN 'inactive' WHEN l.outcome = 1 OR l.occurrence = 1 THEN 'resolved' "
    "WHEN l.occurrence > 1 THEN 'recurrence' ELSE 'active' END"
)


def has_item(item: str) -> str:
    return f"CONCAT(';', l.diagnosis, ';') LIKE BINARY '%;{item};%'"


def test_condition_codes_are_split_and_searchable(client, sql):
    for token, where in [
        (f"{ICD10}|I10", has_item("ICD10:I10")),
        (f"{ICD10}|E11.9", has_item("ICD10:E11.9")),
        (f"{SNOMED}|38341003", has_item("SNOMED-CT:38341003")),
        ("I10", f"({has_item('ICD10:I10')} OR {has_item('SNOMED-CT:I10')})"),
        ("99213", has_item("CPT4:99213")),
        (f"{ICD10}|", "(l.diagnosis LIKE BINARY 'ICD10:%' OR l.diagnosis LIKE BINARY '%;ICD10:%')"),
    ]:
        expected = uuids(sql(f"SELECT l.uuid {PROBLEMS} AND {where}"))
        assert set(ids(client, f"/fhir/Condition?code={q(token)}&_count=2")) == expected, token
    assert text_id("cond-case") not in ids(client, f"/fhir/Condition?code={q(ICD10 + '|E11.9')}")  # 'icd10:e11.9' is not it
    diabetes = get_json(client, f"/fhir/Condition/{text_id('cond-dm')}")
    assert diabetes["code"]["coding"] == [{"system": ICD10, "code": "E11.9"}, {"system": SNOMED, "code": "44054006"}]
    local = get_json(client, f"/fhir/Condition/{text_id('cond-local')}")
    assert local["code"] == {"coding": [{"code": "XYZ-1"}], "text": "Local problem"}  # unmapped code type: no system
    assert "onsetDateTime" not in local
    assert get_json(client, f"/fhir/Condition/{text_id('cond-text')}")["code"] == {"text": "Back pain"}


def test_condition_clinical_status_category_and_patient(client, sql):
    for status in ("active", "inactive", "resolved", "recurrence"):
        expected = uuids(sql(f"SELECT l.uuid {PROBLEMS} AND {STATUS} = :s", s=status))
        got = ids(client, f"/fhir/Condition?clinical-status={status}&_count=2")
        assert set(got) == expected, status
        for resource_id in got:
            condition = get_json(client, f"/fhir/Condition/{resource_id}")
            assert condition["clinicalStatus"]["coding"][0]["code"] == status
    assert set(ids(client, "/fhir/Condition?category=problem-list-item")) == uuids(sql(f"SELECT l.uuid {PROBLEMS}"))
    john = text_id("pat-john")
    assert set(ids(client, f"/fhir/Condition?patient={john}")) == uuids(
        sql(f"SELECT l.uuid {PROBLEMS} AND p.uuid = :p", p=uuid.UUID(john).bytes)
    )
    onset = uuids(sql(f"SELECT l.uuid {PROBLEMS} AND l.begdate >= '2020-01-01'"))
    assert set(ids(client, "/fhir/Condition?onset-date=ge2020-01-01")) == onset


def test_allergies(client, sql):
    allergies = "FROM lists l JOIN patient_data p ON p.pid = l.pid WHERE BINARY l.type = 'allergy' AND l.uuid IS NOT NULL"
    assert set(ids(client, "/fhir/AllergyIntolerance")) == uuids(sql(f"SELECT l.uuid {allergies}"))
    active = uuids(sql(f"SELECT l.uuid {allergies} AND (l.enddate IS NULL OR l.enddate < '0001-01-01')"))
    assert set(ids(client, "/fhir/AllergyIntolerance?clinical-status=active")) == active
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert ids(client, f"/fhir/AllergyIntolerance?code={q(rxnorm + '|7980')}") == [text_id("alg-pcn")]


def test_surgical_history_procedures(client, sql):
    surgeries = "FROM lists l JOIN patient_data p ON p.pid = l.pid WHERE BINARY l.type = 'surgery' AND l.uuid IS NOT NULL"
    assert set(ids(client, "/fhir/Procedure?_count=1")) == uuids(sql(f"SELECT l.uuid {surgeries}"))
    cpt = uuids(sql(f"SELECT l.uuid {surgeries} AND {has_item('CPT4:44950')}"))
    assert set(ids(client, f"/fhir/Procedure?code={q('http://www.ama-assn.org/go/cpt|44950')}")) == cpt == {text_id("surg-appy")}
    assert set(ids(client, "/fhir/Procedure?date=lt2000")) == uuids(
        sql(f"SELECT l.uuid {surgeries} AND l.begdate >= '0001-01-01' AND l.begdate < '2000-01-01'")
    )
    assert "performedDateTime" not in get_json(client, f"/fhir/Procedure/{text_id('surg-knee')}")


# --------------------------------------------------------------------------- medications, immunizations, encounters
def test_medication_requests(client, sql):
    rx = "FROM prescriptions rx JOIN patient_data p ON p.pid = rx.patient_id WHERE rx.uuid IS NOT NULL"
    rule = "CASE WHEN rx.active = 1 AND rx.end_date >= '0001-01-01' THEN 'completed' WHEN rx.active = 1 THEN 'active' ELSE 'stopped' END"
    reported = (
        "FROM lists l JOIN patient_data p ON p.pid = l.pid LEFT JOIN lists_medication lm ON lm.list_id = l.id "
        "WHERE BINARY l.type = 'medication' AND lm.prescription_id IS NULL AND l.uuid IS NOT NULL"
    )
    reported_rule = (
        "CASE WHEN l.activity = 1 AND l.enddate >= '0001-01-01' THEN 'completed' WHEN l.activity = 1 THEN 'active' ELSE 'stopped' END"
    )
    for status in ("active", "completed", "stopped"):
        expected = uuids(sql(f"SELECT rx.uuid {rx} AND {rule} = :s UNION ALL SELECT l.uuid {reported} AND {reported_rule} = :s", s=status))
        assert set(ids(client, f"/fhir/MedicationRequest?status={status}")) == expected, status
    jane = text_id("pat-jane")
    janes = uuids(sql(f"SELECT rx.uuid {rx} AND p.uuid = :p UNION ALL SELECT l.uuid {reported} AND p.uuid = :p", p=uuid.UUID(jane).bytes))
    assert set(ids(client, f"/fhir/MedicationRequest?patient={jane}&_count=1")) == janes
    assert text_id("med-linked") not in janes and text_id("med-list") in janes
    metformin = get_json(client, f"/fhir/MedicationRequest/{text_id('rx-metformin')}")
    assert metformin["requester"] == {"reference": f"Practitioner/{text_id('user-house')}"}
    assert metformin["medicationCodeableConcept"]["coding"][0]["code"] == "860975"
    assert get_json(client, f"/fhir/MedicationRequest/{text_id('rx-zero-end')}")["intent"] == "order"  # unknown intent
    aspirin = get_json(client, f"/fhir/MedicationRequest/{text_id('med-list')}")
    assert aspirin["intent"] == "plan" and aspirin["reportedBoolean"] is True
    assert aspirin["dosageInstruction"] == [{"text": "One at night"}]
    assert aspirin["requester"] == {"reference": f"Practitioner/{text_id('user-house')}"}  # lists.user = users.username
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert set(ids(client, f"/fhir/MedicationRequest?code={q(rxnorm + '|1191')}")) == {text_id("med-list")}
    plans = uuids(sql(f"SELECT l.uuid {reported} AND (lm.request_intent IS NULL OR lm.request_intent = '')"))
    assert set(ids(client, "/fhir/MedicationRequest?intent=plan")) == plans | uuids(
        sql(f"SELECT rx.uuid {rx} AND BINARY rx.request_intent = 'plan'")
    )


def test_diagnostic_reports(client, sql):
    reports = (
        "FROM procedure_report rp JOIN procedure_order o ON o.procedure_order_id = rp.procedure_order_id "
        "JOIN patient_data p ON p.pid = o.patient_id WHERE rp.uuid <> REPEAT(CHAR(0), 16) AND o.activity = 1"
    )
    assert set(ids(client, "/fhir/DiagnosticReport?category=LAB&_count=1")) == uuids(sql(f"SELECT rp.uuid {reports}"))
    recent = uuids(sql(f"SELECT rp.uuid {reports} AND rp.date_collected >= '2024-01-01'"))
    assert set(ids(client, "/fhir/DiagnosticReport?category=LAB&date=ge2024-01-01")) == recent
    jane = text_id("pat-jane")
    assert ids(client, f"/fhir/DiagnosticReport?patient={jane}&category=LAB") == [text_id("rep-1")]
    assert set(ids(client, f"/fhir/DiagnosticReport?patient={jane}")) == {text_id("rep-1"), text_id("note-imaging")}  # and the report note
    assert ids(client, "/fhir/DiagnosticReport?status=final&code=GLU&_sort=date") == [text_id("rep-2"), text_id("rep-1")]


def test_lab_order_codes_translate_through_the_openemr_crosswalk(client, sql):
    # terminology/crosswalks/openemr/lab_orders.csv: GLU -> LOINC 2345-7 (equivalent); the order code stays.
    local = "urn:fhir-facade:openemr:procedure-code"
    report = get_json(client, f"/fhir/DiagnosticReport/{text_id('rep-1')}")
    assert report["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose [Mass/volume] in Serum or Plasma"},
        {"system": local, "code": "GLU", "display": "Glucose"},
    ]
    reports = (
        "FROM procedure_report rp JOIN procedure_order o ON o.procedure_order_id = rp.procedure_order_id "
        "JOIN patient_data p ON p.pid = o.patient_id JOIN procedure_order_code oc ON oc.procedure_order_id = rp.procedure_order_id "
        "AND oc.procedure_order_seq = rp.procedure_order_seq WHERE rp.uuid <> REPEAT(CHAR(0), 16) AND o.activity = 1"
    )
    glucose = uuids(sql(f"SELECT rp.uuid {reports} AND BINARY oc.procedure_code = 'GLU'"))
    assert glucose and set(ids(client, f"/fhir/DiagnosticReport?code={q('http://loinc.org|2345-7')}")) == glucose
    assert set(ids(client, f"/fhir/DiagnosticReport?code={q(local + '|GLU')}")) == glucose
    assert ids(client, f"/fhir/DiagnosticReport?code={q('http://loinc.org|GLU')}") == []
    assert ids(client, f"/fhir/DiagnosticReport?code={q('http://loinc.org|4548-4')}") == []  # mapped, but no such order here


def test_immunizations(client, sql):
    imm = "FROM immunizations i JOIN patient_data p ON p.pid = i.patient_id WHERE i.uuid IS NOT NULL"
    rule = (
        "CASE WHEN i.added_erroneously = 1 THEN 'entered-in-error' WHEN i.completion_status IS NULL "
        "OR i.completion_status IN ('', 'Completed') THEN 'completed' ELSE 'not-done' END"
    )
    for status in ("completed", "not-done", "entered-in-error"):
        assert set(ids(client, f"/fhir/Immunization?status={status}")) == uuids(sql(f"SELECT i.uuid {imm} AND {rule} = :s", s=status))
    flu = uuids(sql(f"SELECT i.uuid {imm} AND BINARY i.cvx_code = '141'"))
    assert set(ids(client, f"/fhir/Immunization?vaccine-code={q('http://hl7.org/fhir/sid/cvx|141')}")) == flu
    undated = get_json(client, f"/fhir/Immunization/{text_id('imm-nodate')}")
    assert undated["occurrenceString"] == "unknown" and "occurrenceDateTime" not in undated
    assert undated["vaccineCode"]["coding"][0]["code"] == "unknown"


def test_encounters(client, sql):
    enc = "FROM form_encounter e JOIN patient_data p ON p.pid = e.pid WHERE e.uuid IS NOT NULL"
    assert set(ids(client, "/fhir/Encounter?date=ge2024-01-01&_count=1")) == uuids(sql(f"SELECT e.uuid {enc} AND e.date >= '2024-01-01'"))
    assert set(ids(client, "/fhir/Encounter?class=EMER")) == uuids(sql(f"SELECT e.uuid {enc} AND BINARY e.class_code = 'EMER'"))
    first = get_json(client, f"/fhir/Encounter/{text_id('enc-1')}")
    assert first["period"] == {"start": "2024-03-01T09:00:00+00:00", "end": "2024-03-01T09:30:00+00:00"}
    assert first["serviceProvider"] == {"reference": f"Organization/{text_id('fac-main')}"}


def test_practitioners_organizations_locations(client, sql):
    practitioners = uuids(sql("SELECT uuid FROM users WHERE uuid IS NOT NULL AND abook_type = ''"))
    assert set(ids(client, "/fhir/Practitioner")) == practitioners and text_id("user-lab") not in practitioners
    assert ids(client, "/fhir/Practitioner?identifier=1234567893") == [text_id("user-house")]
    assert get_json(client, f"/fhir/Practitioner/{text_id('user-old')}")["active"] is False
    # the seeded facility has no uuid yet; the other Organizations are insurance companies
    assert set(ids(client, "/fhir/Organization")) == {text_id("fac-main")} | uuids(
        sql("SELECT uuid FROM insurance_companies WHERE uuid IS NOT NULL")
    )
    location = get_json(client, f"/fhir/Location/{text_id('loc-main')}")
    assert location["managingOrganization"] == {"reference": f"Organization/{text_id('fac-main')}"}
    assert ids(client, f"/fhir/Location?organization={text_id('fac-main')}") == [text_id("loc-main")]


def test_patient_compartment_reads(client):
    """Everything served for a patient points at that patient."""
    jane = text_id("pat-jane")
    for resource_type, field in [
        ("Observation", "subject"),
        ("DiagnosticReport", "subject"),
        ("Condition", "subject"),
        ("AllergyIntolerance", "patient"),
        ("Procedure", "subject"),
        ("MedicationRequest", "subject"),
        ("Immunization", "patient"),
        ("Encounter", "subject"),
        ("Coverage", "beneficiary"),
        ("ServiceRequest", "subject"),
    ]:
        found = [e["resource"] for page in walk(client, f"/fhir/{resource_type}?patient={jane}") for e in page.get("entry", [])]
        assert found, resource_type
        assert {r[field]["reference"] for r in found} == {f"Patient/{jane}"}
