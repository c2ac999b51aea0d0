"""Every US Core 6.1 SHALL search (and the SHOULD ones the demo supports) on the new types
returns exactly the ids a hand-written SQL query over the legacy tables returns, over every page.

Each case names the legacy table whose busiest live patient it searches (so the answers run
to several pages), the FHIR query, and the SQL. ``{pt}`` is that patient's guid in the query
and ``:pt`` its pt_seq in the SQL.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from support.demo_sql import RECORD_TYPES, observation_ids_of, record_sql
from support.fhir_client import assert_same_ids, get_json, search_ids, sql_ids

PAGE = 7  # small pages: every search below spans several


def live(*aliases: str) -> str:
    return " AND ".join(f"({a}.del_flg IS NULL OR {a}.del_flg <> 'Y')" for a in aliases)


def known(column: str, guard: str) -> str:
    """A legacy text date holding a real date (junk like '0000-00-00' and '' sort below the guard)."""
    return f"({column} IS NOT NULL AND {column} >= '{guard}')"


TS19 = "0001-01-01 00:00:00"


def period_reaches(bound: str) -> str:
    """The visit ends at or after ``bound``, or is still open (no discharge yet)."""
    return f"(x.dsch_dt >= '{bound}' OR (NOT {known('x.dsch_dt', TS19)} AND {known('x.adm_dt', TS19)}))"


def period_begins_before(bound: str) -> str:
    """The visit begins before ``bound``; an unknown admission is an open start."""
    return f"(({known('x.adm_dt', TS19)} AND x.adm_dt < '{bound}') OR (NOT {known('x.adm_dt', TS19)} AND {known('x.dsch_dt', TS19)}))"


ENC = f"SELECT x.visit_guid FROM enc_visit x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
PROBLEMS = f"SELECT x.prob_guid FROM prob_list x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
DIAGNOSES = (
    f"SELECT x.dx_guid FROM enc_dx x JOIN pt_master p ON x.pt_seq = p.pt_seq JOIN enc_visit e ON e.visit_no = x.visit_no"
    f" WHERE {live('x', 'p', 'e')} AND x.pt_seq = :pt"
)
RX = f"SELECT x.rx_guid FROM rx_order x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
ALLERGY = f"SELECT x.alg_guid FROM allergy x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
IMM = f"SELECT x.imm_guid FROM immun x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
PROC = (
    f"SELECT x.proc_guid FROM proc_log x JOIN pt_master p ON x.pt_seq = p.pt_seq LEFT JOIN proc_cd c ON c.proc_cd = x.proc_cd"
    f" WHERE {live('x', 'p')} AND x.pt_seq = :pt"
)
REPORTS = f"SELECT x.ord_guid FROM lab_order x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
NOTE_REPORTS = (  # the notes that are reports (tests/uscore/test_uscore_note_reports.py searches them on their own)
    "SELECT x.note_guid FROM note_hdr x JOIN note_txt b ON b.note_id = x.note_id JOIN note_typ_cd t ON t.note_typ = x.note_typ"
    f" JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND t.rpt_cat IS NOT NULL AND x.pt_seq = :pt"
)
SMOKING = f"SELECT x.sh_guid FROM soc_hx x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
JOBS = (
    f"SELECT x.emp_guid FROM emp_hx x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.pt_seq = :pt"
    " AND x.occ_desc IS NOT NULL AND x.occ_desc <> ''"
)
OB = "FROM ob_hx x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE " + live("x", "p") + " AND x.pt_seq = :pt"
PREGNANCY = f"SELECT x.ob_guid || '-status' {OB} AND x.preg_yn IN ('Y', 'N', 'U')"
INTENT = f"SELECT x.ob_guid || '-intent' {OB} AND x.preg_intent IN ('Y', 'N', 'U')"
SOCIAL = f"{SMOKING} UNION ALL {JOBS} UNION ALL {PREGNANCY} UNION ALL {INTENT}"
HVS = "FROM hvs_form x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE " + live("x", "p") + " AND x.pt_seq = :pt"
ANSWERED = "IN ('O', 'S', 'N', 'R')"
HUNGER_Q1 = f"SELECT x.hvs_guid || '-q1' {HVS} AND x.q1_ans {ANSWERED}"
HUNGER = (
    f"SELECT x.hvs_guid || '-panel' {HVS} AND (x.q1_ans {ANSWERED} OR x.q2_ans {ANSWERED})"
    f" UNION ALL {HUNGER_Q1} UNION ALL SELECT x.hvs_guid || '-q2' {HVS} AND x.q2_ans {ANSWERED}"
)


def since(sql: str, column: str, bound: str) -> str:
    """Each SELECT of a UNION ALL, limited to rows whose ``column`` is at or after ``bound``."""
    return " UNION ALL ".join(f"{part} AND {column} >= '{bound}'" for part in sql.split(" UNION ALL "))


CASES = [
    # Encounter: patient; date+patient (the period admitted..discharged, an open visit is ongoing); class, practitioner
    ("enc_visit", "Encounter?patient={pt}", ENC),
    (
        "enc_visit",
        "Encounter?patient=Patient/{pt}&date=2024",
        ENC + " AND x.adm_dt >= '2024-01-01 00:00:00'"
        " AND x.dsch_dt IS NOT NULL AND x.dsch_dt >= '0001' AND x.dsch_dt < '2025-01-01 00:00:00'",
    ),
    ("enc_visit", "Encounter?patient={pt}&date=ge2026-06-01", ENC + " AND " + period_reaches("2026-06-01 00:00:00")),
    ("enc_visit", "Encounter?patient={pt}&date=lt2010-01-01", ENC + " AND " + period_begins_before("2010-01-01 00:00:00")),
    (
        "enc_visit",
        "Encounter?patient={pt}&date=ge2015-01-01&date=le2015-06-30",
        ENC + " AND " + period_reaches("2015-01-01 00:00:00") + " AND " + period_begins_before("2015-07-01 00:00:00"),
    ),
    (
        "enc_visit",
        "Encounter?patient={pt}&date=sa2026-06-01T12:00:00&date=eb2026-06-30",
        ENC + " AND x.adm_dt >= '2026-06-01 12:00:01' AND x.dsch_dt >= '0001' AND x.dsch_dt < '2026-06-30 00:00:00'",
    ),
    ("enc_visit", "Encounter?patient={pt}&class=IMP,EMER", ENC + " AND x.visit_type IN ('I', 'E')"),
    (
        "enc_visit",
        "Encounter?patient={pt}&class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB&practitioner=Practitioner/DR1003",
        ENC + " AND x.visit_type = 'O' AND x.attend_dr = 'DR1003'",
    ),
    ("enc_visit", "Encounter?patient={pt}&location=Location/ED", ENC + " AND x.dept_cd = 'ED'"),
    (
        "enc_visit",
        "Encounter?patient={pt}&service-provider=Organization/GMH",
        ENC.replace("WHERE", "JOIN dept_loc l ON l.dept_cd = x.dept_cd WHERE") + " AND l.org_cd = 'GMH'",
    ),
    # Condition: patient; patient+category; clinical-status, dates, encounter
    ("prob_list", "Condition?patient={pt}", f"{PROBLEMS} UNION ALL {DIAGNOSES}"),
    ("prob_list", "Condition?patient={pt}&category=problem-list-item", PROBLEMS),
    ("enc_dx", "Condition?patient={pt}&category=http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis", DIAGNOSES),
    ("prob_list", "Condition?patient={pt}&clinical-status=active,inactive", PROBLEMS + " AND x.prob_stat IN ('A', 'I')"),
    ("prob_list", "Condition?patient={pt}&category=problem-list-item&clinical-status:not=active", PROBLEMS + " AND x.prob_stat <> 'A'"),
    (
        "prob_list",
        "Condition?patient={pt}&onset-date=lt2020",
        PROBLEMS + f" AND {known('x.onset_dt', '00010101')} AND x.onset_dt < '20200101'",
    ),
    ("prob_list", "Condition?patient={pt}&abatement-date:missing=false", PROBLEMS + f" AND {known('x.resolved_dt', '00010101')}"),
    (
        "enc_dx",
        "Condition?patient={pt}&recorded-date=ge2025",
        f"{PROBLEMS} AND x.entered_dt >= '20250101' UNION ALL {DIAGNOSES} AND x.ent_dttm >= '20250101000000'",
    ),
    # AllergyIntolerance: patient (+clinical-status)
    ("allergy", "AllergyIntolerance?patient={pt}", ALLERGY),
    ("allergy", "AllergyIntolerance?patient={pt}&clinical-status=active", ALLERGY + " AND x.alg_stat = 'A'"),
    # MedicationRequest: patient+intent; patient+intent+status (multipleOr)
    ("rx_order", "MedicationRequest?patient={pt}&intent=order", RX),
    ("rx_order", "MedicationRequest?patient={pt}&intent=order&status=active,completed", RX + " AND x.rx_stat IN ('A', 'C')"),
    ("rx_order", "MedicationRequest?patient={pt}&intent=order&status=stopped", RX + " AND x.rx_stat = 'D'"),
    (
        "rx_order",
        "MedicationRequest?patient={pt}&intent=http://hl7.org/fhir/CodeSystem/medicationrequest-intent|order&authoredon=ge2024",
        RX + " AND x.order_dt >= '20240101'",
    ),
    ("rx_order", "MedicationRequest?patient={pt}&intent=plan", RX + " AND 1 = 0"),
    # Immunization: patient (+date, +status)
    ("immun", "Immunization?patient={pt}", IMM),
    ("immun", "Immunization?patient={pt}&date=ge2023-01-01", IMM + " AND x.admin_dt >= '2023-01-01'"),
    ("immun", "Immunization?patient={pt}&status=completed", IMM + " AND x.imm_stat = 'G'"),
    # Procedure: patient; patient+date; status (multipleOr); code
    ("proc_log", "Procedure?patient={pt}", PROC),
    (
        "proc_log",
        "Procedure?patient={pt}&date=ge2020-01-01&date=lt2026",
        PROC + " AND x.perf_dttm >= '202001010000' AND x.perf_dttm < '202601010000'",
    ),
    ("proc_log", "Procedure?patient={pt}&status=completed,in-progress", PROC + " AND x.proc_stat IN ('C', 'I')"),
    ("proc_log", "Procedure?patient={pt}&code=http://www.ama-assn.org/go/cpt|93000", PROC + " AND c.cpt_cd = '93000'"),
    (
        "proc_log",
        "Procedure?patient={pt}&code=http://snomed.info/sct|268400002,http://www.ama-assn.org/go/cpt|71046",
        PROC + " AND (c.snomed_cd = '268400002' OR c.cpt_cd = '71046')",
    ),
    # DiagnosticReport: patient; +category; +code; +category+date; status (multipleOr); result
    ("lab_order", "DiagnosticReport?patient={pt}", f"{REPORTS} UNION ALL {NOTE_REPORTS}"),
    ("lab_order", "DiagnosticReport?patient={pt}&category=LAB", REPORTS),
    ("lab_order", "DiagnosticReport?patient={pt}&code=http://loinc.org|51990-0", REPORTS + " AND x.panel_cd = 'BMP'"),
    ("lab_order", "DiagnosticReport?patient={pt}&code=urn:fhir-facade:demo:lab-panel|DMMON", REPORTS + " AND x.panel_cd = 'DMMON'"),
    (
        "lab_order",
        "DiagnosticReport?patient={pt}&category=http://terminology.hl7.org/CodeSystem/v2-0074|LAB&date=ge2020-06&date=lt2024",
        REPORTS + " AND x.collect_dttm >= '20200601000000' AND x.collect_dttm < '20240101000000'",
    ),
    (
        "lab_order",
        "DiagnosticReport?patient={pt}&status=final,corrected",
        f"{REPORTS} AND x.ord_stat IN ('F', 'C') UNION ALL {NOTE_REPORTS} AND (x.sign_stat IS NULL OR x.sign_stat NOT IN ('U', 'X'))",
    ),
    # Observation smoking status: patient+category; patient+code; patient+category+date
    ("soc_hx", "Observation?patient={pt}&category=social-history", SOCIAL),
    ("soc_hx", "Observation?patient={pt}&code=http://loinc.org|72166-2", SMOKING),
    (
        "soc_hx",
        "Observation?patient={pt}&category=social-history&date=ge2010",
        f"{SMOKING} AND x.rec_dttm >= '20100101000000' UNION ALL {JOBS} AND (x.end_dt IS NULL OR x.end_dt >= '20100101')"
        f" UNION ALL {since(PREGNANCY + ' UNION ALL ' + INTENT, 'x.rec_dttm', '20100101000000')}",
    ),
    # Occupation (a job's period, an open end is the current job), pregnancy status and intent: the same searches
    ("emp_hx", "Observation?patient={pt}&category=social-history", SOCIAL),
    ("emp_hx", "Observation?patient={pt}&code=http://loinc.org|11341-5", JOBS),
    ("emp_hx", "Observation?patient={pt}&code=http://loinc.org|11341-5&date=lt2020", JOBS + " AND x.start_dt < '20200101'"),
    ("ob_hx", "Observation?patient={pt}&category=social-history", SOCIAL),
    ("ob_hx", "Observation?patient={pt}&code=http://loinc.org|82810-3", PREGNANCY),
    ("ob_hx", "Observation?patient={pt}&code=http://loinc.org|86645-9", INTENT),
    (
        "ob_hx",
        "Observation?patient={pt}&category=social-history&date=ge2024-01-01",
        f"{SMOKING} AND x.rec_dttm >= '20240101000000' UNION ALL {JOBS} AND (x.end_dt IS NULL OR x.end_dt >= '20240101')"
        f" UNION ALL {since(PREGNANCY + ' UNION ALL ' + INTENT, 'x.rec_dttm', '20240101000000')}",
    ),
    # Screening assessments (the Hunger Vital Sign): category survey or sdoh, code, date
    ("hvs_form", "Observation?patient={pt}&category=sdoh", HUNGER),
    ("hvs_form", "Observation?patient={pt}&category=http://terminology.hl7.org/CodeSystem/observation-category|survey", HUNGER),
    ("hvs_form", "Observation?patient={pt}&category=http://hl7.org/fhir/us/core/CodeSystem/us-core-category|sdoh", HUNGER),
    ("hvs_form", "Observation?patient={pt}&code=http://loinc.org|88122-7", HUNGER_Q1),
    ("hvs_form", "Observation?patient={pt}&category=sdoh&date=ge2024-06", since(HUNGER, "x.form_dttm", "20240601000000")),
]


@pytest.fixture(scope="module")
def busiest(raw_db):
    """Per legacy table, the live patient with the most live rows in it."""
    cache: dict[str, tuple[str, int]] = {}

    def pick(table: str) -> tuple[str, int]:
        if table not in cache:
            cache[table] = raw_db.execute(
                f"""SELECT p.pt_guid, p.pt_seq FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq
                    WHERE {live("x", "p")} GROUP BY p.pt_seq, p.pt_guid ORDER BY count(*) DESC, p.pt_seq LIMIT 1"""
            ).fetchone()
        return cache[table]

    return pick


@pytest.mark.parametrize(
    "table,query,sql", CASES, ids=[case[1].split("?")[0] + ":" + case[1].split("?")[1].replace("{pt}", "P") for case in CASES]
)
def test_patient_searches_match_sql(client, raw_db, busiest, table, query, sql):
    guid, seq = busiest(table)
    pages: list[int] = []
    api = search_ids(client, f"/fhir/{query.format(pt=guid)}&_count={PAGE}", on_page=lambda b: pages.append(len(b.get("entry", []))))
    expected = sql_ids(raw_db, sql.replace(":pt", str(seq)))
    assert_same_ids(api, expected, allow_empty=query.endswith("intent=plan"))
    if len(expected) > PAGE:
        assert len(pages) > 1


def _guid(raw_db, sql: str) -> str:
    row = raw_db.execute(sql).fetchone()
    assert row, sql
    return row[0]


def test_encounter_by_id_and_identifier(client, raw_db):
    guid, number = raw_db.execute(
        f"SELECT x.visit_guid, x.visit_no FROM enc_visit x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} LIMIT 1"
    ).fetchone()
    assert search_ids(client, f"/fhir/Encounter?_id={guid}") == [guid]
    assert search_ids(client, f"/fhir/Encounter?identifier=urn:fhir-facade:demo:visit|{number}") == [guid]
    (deleted,) = raw_db.execute("SELECT visit_guid FROM enc_visit WHERE del_flg = 'Y' LIMIT 1").fetchone()
    assert search_ids(client, f"/fhir/Encounter?_id={deleted}") == []


def test_diagnostic_report_by_result(client, raw_db):
    order, result = raw_db.execute(f"""SELECT x.ord_guid, r.res_guid FROM lab_order x JOIN pt_master p ON x.pt_seq = p.pt_seq
        JOIN lab_result r ON r.ord_no = x.ord_no WHERE {live("x", "p", "r")} LIMIT 1""").fetchone()
    assert search_ids(client, f"/fhir/DiagnosticReport?result=Observation/{result}") == [order]
    (deleted,) = raw_db.execute("SELECT res_guid FROM lab_result WHERE del_flg = 'Y' AND ord_no IS NOT NULL LIMIT 1").fetchone()
    assert search_ids(client, f"/fhir/DiagnosticReport?result={deleted}") == []


def test_medication_request_by_medication_and_encounter(client, raw_db):
    api = search_ids(client, "/fhir/MedicationRequest?medication=Medication/100234&intent=order&_count=200")
    expected = sql_ids(
        raw_db, f"SELECT x.rx_guid FROM rx_order x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} AND x.med_cd = '100234'"
    )
    assert_same_ids(api, expected)


def test_practitioner_searches(client, raw_db):
    dr, npi, last = raw_db.execute(
        "SELECT dr_cd, npi, last_nm FROM staff WHERE length(npi) = 10 AND npi <> '0000000000' ORDER BY dr_cd LIMIT 1"
    ).fetchone()
    assert search_ids(client, f"/fhir/Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{npi}") == [dr]
    assert search_ids(client, f"/fhir/Practitioner?identifier=urn:fhir-facade:demo:staff|{dr}") == [dr]
    prefix = last[:3].lower()
    expected = sql_ids(
        raw_db, "SELECT dr_cd FROM staff WHERE last_nm LIKE ? OR first_nm LIKE ?", (prefix.upper() + "%", prefix.upper() + "%")
    )
    assert_same_ids(search_ids(client, f"/fhir/Practitioner?name={prefix}&_count=2"), expected)


def test_organization_and_location_searches(client, raw_db):
    assert_same_ids(
        search_ids(client, "/fhir/Organization?name=gmh"), sql_ids(raw_db, "SELECT org_cd FROM org_mstr WHERE org_nm LIKE 'GMH%'")
    )
    assert_same_ids(
        search_ids(client, "/fhir/Organization?address=springfield"),
        sql_ids(raw_db, "SELECT org_cd FROM org_mstr WHERE city = 'SPRINGFIELD'"),
    )
    assert_same_ids(
        search_ids(client, "/fhir/Organization?address=19901"), sql_ids(raw_db, "SELECT org_cd FROM org_mstr WHERE zip_cd LIKE '19901%'")
    )
    assert_same_ids(
        search_ids(client, "/fhir/Location?name=family"), sql_ids(raw_db, "SELECT dept_cd FROM dept_loc WHERE dept_nm LIKE 'FAMILY%'")
    )
    assert_same_ids(
        search_ids(client, "/fhir/Location?organization=GMH&_count=2"), sql_ids(raw_db, "SELECT dept_cd FROM dept_loc WHERE org_cd = 'GMH'")
    )


def test_provenance_by_target_and_patient(client, raw_db):
    rx = _guid(raw_db, f"SELECT x.rx_guid FROM rx_order x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} LIMIT 1")
    visit = _guid(raw_db, f"SELECT x.visit_guid FROM enc_visit x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {live('x', 'p')} LIMIT 1")
    assert search_ids(client, f"/fhir/Provenance?target=MedicationRequest/{rx}") == [f"rx-{rx}"]
    assert search_ids(client, f"/fhir/Provenance?target=Encounter/{visit},MedicationRequest/{rx}") == sorted([f"enc-{visit}", f"rx-{rx}"])
    assert search_ids(client, f"/fhir/Provenance?target=Encounter/{rx}") == []  # right id, wrong type
    guid, seq = raw_db.execute(
        "SELECT pt_guid, pt_seq FROM pt_master WHERE del_flg = 'N' AND pt_seq > 1 ORDER BY pt_seq LIMIT 1"
    ).fetchone()
    expected = [f"pt-{guid}"]
    for prefix, table, column, extra in [
        ("enc", "enc_visit", "visit_guid", ""),
        ("prob", "prob_list", "prob_guid", ""),
        ("alg", "allergy", "alg_guid", ""),
        ("imm", "immun", "imm_guid", ""),
        ("rx", "rx_order", "rx_guid", ""),
        ("proc", "proc_log", "proc_guid", ""),
        ("lab", "lab_order", "ord_guid", ""),
        ("dx", "enc_dx", "dx_guid", " AND x.visit_no IN (SELECT visit_no FROM enc_visit WHERE del_flg = 'N')"),
    ]:
        expected += [
            f"{prefix}-{g}"
            for g in sql_ids(raw_db, f"SELECT {column} FROM {table} x WHERE x.pt_seq = ? AND x.del_flg <> 'Y'{extra}", (seq,))
        ]
    for resource_type, spec in RECORD_TYPES.items():  # the later tables (notes, plans, fills…)
        if spec[4]:
            expected += [f"{spec[4]}-{i}" for i, _p in raw_db.execute(record_sql(resource_type, "p.pt_guid = ?"), (guid,))]
    expected += [f"obs-{i}" for i in observation_ids_of(raw_db, [guid])]
    assert_same_ids(search_ids(client, f"/fhir/Provenance?patient={guid}&_count=5"), expected)


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/DiagnosticReport?_count={count}",  # each report's results: a correlated subquery, not a query per row
        "/fhir/Provenance?_count={count}",  # nine legacy tables, one UNION ALL
        "/fhir/Encounter?date=ge2020&_count={count}",
        "/fhir/Condition?category=problem-list-item,encounter-diagnosis&_count={count}",
        "/fhir/MedicationRequest?intent=order&status=active&_count={count}",
    ],
)
@pytest.mark.parametrize("count", [1, 200])
def test_one_statement_per_page(client, app, path, count):
    adapter = app.extensions["fhir_facade"].adapter
    adapter.bound()  # binding (reflection) happens once per process
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(adapter.engine, "before_cursor_execute", record)
    try:
        bundle = get_json(client, path.format(count=count))
    finally:
        sa.event.remove(adapter.engine, "before_cursor_execute", record)
    assert len(bundle["entry"]) == count
    assert len(statements) == 1, statements
