"""Observation search semantics, checked against hand-written SQL on the legacy tables.

Observations come from several legacy tables: one per ``lab_result`` row, one per
non-null measurement of each wide ``vitals`` row (id ``<vs_guid>-<variant>``), one per
smoking-status interview and job, and one per answer of the OB questions and the Hunger
Vital Sign form. The ``OBS`` common table expression below spells that out in plain SQL,
with the FHIR values each search parameter looks at, so expected answers never come from
the façade's own code. A job is a period (``dttm`` its start, ``hi`` its end): ``hi`` is the
text that compares with a search bound as the period's end does (``hi >= X``: it reaches
past X; an open end reaches past everything); for the other rows ``hi`` is ``dttm``.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

import pytest

from support.fhir_client import assert_same_ids, get_json, q, search_ids, search_resources, sql_ids

BASE = "http://testserver/fhir"
LOINC = "http://loinc.org"
LAB_SYSTEM = "urn:fhir-facade:demo:lab-test"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
STATUS = "http://hl7.org/fhir/observation-status"

# (variant, LOINC code, the columns that must be non-null)
VITALS = [
    ("pulse", "8867-4", ["pulse"]),
    ("resp", "9279-1", ["resp_rate"]),
    ("temp", "8310-5", ["temp_f"]),
    ("weight", "29463-7", ["wt_lb"]),
    ("height", "8302-2", ["ht_in"]),
    ("spo2", "59408-5", ["spo2"]),
    ("headcirc", "9843-4", ["head_circ_cm"]),
    ("bmi", "39156-5", ["wt_lb", "ht_in"]),
    ("bp", "85354-9", ["bp_sys", "bp_dia"]),
    ("bmiage", "59576-9", ["bmi_pctl"]),
    ("wtlen", "77606-2", ["wt_len_pctl"]),
    ("headpctl", "8289-1", ["hc_pctl"]),
]
_VITAL_SELECTS = "\n  UNION ALL\n".join(
    f"""  SELECT v.vs_guid || '-{name}', p.pt_guid, 'vital-signs', '{loinc}', NULL, v.taken_dttm, 'final'
  FROM vitals v JOIN pt_master p ON p.pt_seq = v.pt_seq
  WHERE COALESCE(v.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' AND {" AND ".join(f"v.{c} IS NOT NULL" for c in columns)}"""
    for name, loinc, columns in VITALS
)
# (id suffix, category, LOINC code, table, guid column, time column, answer column, answers)
ANSWERED = [
    ("status", "social-history", "82810-3", "ob_hx", "ob_guid", "rec_dttm", "preg_yn", "'Y', 'N', 'U'"),
    ("intent", "social-history", "86645-9", "ob_hx", "ob_guid", "rec_dttm", "preg_intent", "'Y', 'N', 'U'"),
    ("q1", "survey", "88122-7", "hvs_form", "hvs_guid", "form_dttm", "q1_ans", "'O', 'S', 'N', 'R'"),
    ("q2", "survey", "88123-5", "hvs_form", "hvs_guid", "form_dttm", "q2_ans", "'O', 'S', 'N', 'R'"),
]
_ANSWER_SELECTS = "\n  UNION ALL\n".join(
    f"""  SELECT x.{guid} || '-{name}', p.pt_guid, '{category}', '{loinc}', NULL, x.{when}, 'final', x.{when}
  FROM {table} x JOIN pt_master p ON p.pt_seq = x.pt_seq
  WHERE COALESCE(x.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' AND x.{column} IN ({answers})"""
    for name, category, loinc, table, guid, when, column, answers in ANSWERED
)
OBS = f"""WITH obs0(id, pt_guid, category, loinc, local_code, dttm, status) AS (
  SELECT r.res_guid, p.pt_guid, 'laboratory', NULLIF(t.loinc_cd, ''), NULLIF(r.test_cd, ''), r.collect_dttm,
         CASE r.res_status WHEN 'F' THEN 'final' WHEN 'P' THEN 'preliminary' WHEN 'C' THEN 'corrected'
                           WHEN 'X' THEN 'cancelled' ELSE 'unknown' END
  FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq LEFT JOIN lab_test_cd t ON t.test_cd = r.test_cd
  WHERE COALESCE(r.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y'
  UNION ALL
{_VITAL_SELECTS}
  UNION ALL
  SELECT h.sh_guid, p.pt_guid, 'social-history', '72166-2', NULL, h.rec_dttm, 'final'
  FROM soc_hx h JOIN pt_master p ON p.pt_seq = h.pt_seq
  WHERE COALESCE(h.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y'
), obs(id, pt_guid, category, loinc, local_code, dttm, status, hi) AS (
  SELECT id, pt_guid, category, loinc, local_code, dttm, status, dttm FROM obs0
  UNION ALL
  SELECT j.emp_guid, p.pt_guid, 'social-history', '11341-5', NULL, j.start_dt || '000000', 'final',
         COALESCE(j.end_dt || '999999', '99999999999999')
  FROM emp_hx j JOIN pt_master p ON p.pt_seq = j.pt_seq
  WHERE COALESCE(j.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' AND j.occ_desc <> ''
  UNION ALL
{_ANSWER_SELECTS}
  UNION ALL
  SELECT x.hvs_guid || '-panel', p.pt_guid, 'survey', '88121-9', NULL, x.form_dttm, 'final', x.form_dttm
  FROM hvs_form x JOIN pt_master p ON p.pt_seq = x.pt_seq
  WHERE COALESCE(x.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y'
    AND (x.q1_ans IN ('O', 'S', 'N', 'R') OR x.q2_ans IN ('O', 'S', 'N', 'R'))
)
"""
JUNK_DTTM = "(dttm IS NULL OR dttm < '00010101000000')"  # '' and '00000000000000'
VALID_DTTM = "dttm >= '00010101000000'"


# --------------------------------------------------------------------------- helpers
def obs_search(client, query: str) -> list[str]:
    return search_ids(client, f"/fhir/Observation?{query}&_count=1000")


def obs_where(raw_db, where: str, params: tuple = ()) -> list[str]:
    return sql_ids(raw_db, f"{OBS} SELECT id FROM obs WHERE {where}", params)


def legacy_dttm(resource: dict) -> str | None:
    """effectiveDateTime ('2024-03-05T10:15:00-05:00', local time) back to the legacy 'YYYYMMDDHHMMSS';
    a job's period start ('2019-04-01') to its start day at midnight."""
    value = resource.get("effectiveDateTime")
    if value is None and "effectivePeriod" in resource:
        return resource["effectivePeriod"]["start"].replace("-", "") + "000000"
    return None if value is None else value[:19].replace("-", "").replace("T", "").replace(":", "")


# --------------------------------------------------------------------------- test data picked by SQL
@pytest.fixture(scope="module")
def patient(raw_db) -> str:
    """An ordinary (not chronic) patient with both labs and vitals."""
    return raw_db.execute(
        """SELECT p.pt_guid FROM pt_master p WHERE p.del_flg <> 'Y' AND p.pt_seq > 1
           AND EXISTS (SELECT 1 FROM lab_result r WHERE r.pt_seq = p.pt_seq AND r.del_flg <> 'Y')
           AND EXISTS (SELECT 1 FROM vitals v WHERE v.pt_seq = p.pt_seq AND v.del_flg <> 'Y')
           ORDER BY p.pt_seq LIMIT 1 OFFSET 7"""
    ).fetchone()[0]


@pytest.fixture(scope="module")
def cohort(raw_db) -> list[str]:
    """Six patients: three with labs that have no LOINC code, three with junk collection/measure times."""
    no_loinc = sql_ids(
        raw_db,
        """SELECT p.pt_guid FROM pt_master p WHERE p.del_flg <> 'Y' AND p.pt_seq > 1 AND EXISTS (
             SELECT 1 FROM lab_result r WHERE r.pt_seq = p.pt_seq AND r.del_flg <> 'Y' AND r.test_cd IN ('UDS', 'XMISC'))
           ORDER BY p.pt_seq LIMIT 3""",
    )
    junk = sql_ids(
        raw_db,
        """SELECT p.pt_guid FROM pt_master p WHERE p.del_flg <> 'Y' AND p.pt_seq > 1 AND (
             EXISTS (SELECT 1 FROM lab_result r WHERE r.pt_seq = p.pt_seq AND r.del_flg <> 'Y' AND r.collect_dttm IN ('', '00000000000000'))
             OR EXISTS (SELECT 1 FROM vitals v WHERE v.pt_seq = p.pt_seq AND v.del_flg <> 'Y' AND v.taken_dttm IN ('', '00000000000000')))
           ORDER BY p.pt_seq DESC LIMIT 3""",
    )
    guids = list(dict.fromkeys(no_loinc + junk))
    assert len(guids) == 6
    return guids


def in_cohort(cohort: list[str]) -> str:
    return "pt_guid IN (" + ",".join(f"'{g}'" for g in cohort) + ")"


# --------------------------------------------------------------------------- patient / subject
def test_patient_reference_forms_agree(client, raw_db, patient):
    expected = obs_where(raw_db, "pt_guid = ?", (patient,))
    assert {r[0] for r in raw_db.execute(f"{OBS} SELECT DISTINCT category FROM obs WHERE pt_guid = ?", (patient,))} >= {
        "laboratory",
        "vital-signs",
    }
    forms = [patient, f"Patient/{patient}", f"{BASE}/Patient/{patient}", f"{BASE}/Patient/{patient}/_history/1"]
    for form in forms:
        assert_same_ids(obs_search(client, f"patient={q(form)}"), expected)
        assert_same_ids(obs_search(client, f"subject={q(form)}"), expected)
    assert_same_ids(obs_search(client, f"patient:Patient={patient}"), expected)
    assert client.get(f"/fhir/Observation?patient=Group/{patient}").status_code == 400


def test_patient_or_list_and_unknown(client, raw_db, cohort):
    assert_same_ids(obs_search(client, "patient=" + ",".join(cohort[:3])), obs_where(raw_db, in_cohort(cohort[:3])))
    assert obs_search(client, "patient=no-such-patient") == []
    # patient and subject together are ANDed
    assert obs_search(client, f"patient={cohort[0]}&subject={cohort[1]}") == []


def test_soft_deleted_rows_and_patients_are_excluded(client, raw_db):
    deleted_pt = raw_db.execute(
        "SELECT p.pt_guid FROM pt_master p WHERE p.del_flg = 'Y' AND EXISTS (SELECT 1 FROM lab_result r WHERE r.pt_seq = p.pt_seq) "
        "AND EXISTS (SELECT 1 FROM vitals v WHERE v.pt_seq = p.pt_seq AND v.pulse IS NOT NULL) ORDER BY p.pt_seq"
    ).fetchone()[0]
    assert obs_search(client, f"patient={deleted_pt}") == []
    deleted_lab = sql_ids(
        raw_db,
        "SELECT r.res_guid FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq WHERE r.del_flg = 'Y' AND p.del_flg <> 'Y' LIMIT 3",
    )
    deleted_vs = sql_ids(
        raw_db,
        "SELECT v.vs_guid || '-pulse' FROM vitals v JOIN pt_master p ON p.pt_seq = v.pt_seq WHERE v.del_flg = 'Y' AND p.del_flg <> 'Y' AND v.pulse IS NOT NULL LIMIT 3",
    )
    assert deleted_lab and deleted_vs
    assert obs_search(client, "_id=" + ",".join(deleted_lab + deleted_vs)) == []
    live = obs_where(raw_db, "category = 'laboratory' ORDER BY id LIMIT 1") + obs_where(raw_db, "id LIKE '%-pulse' ORDER BY id LIMIT 1")
    assert_same_ids(obs_search(client, "_id=" + ",".join(live + deleted_lab)), live)


# --------------------------------------------------------------------------- category
CATEGORY_CASES = [
    ("category=laboratory", "category = 'laboratory'"),
    ("category=vital-signs", "category = 'vital-signs'"),
    ("category=" + q(f"{CATEGORY}|laboratory"), "category = 'laboratory'"),
    ("category=" + q(f"{CATEGORY}|vital-signs"), "category = 'vital-signs'"),
    ("category=laboratory,vital-signs", "category IN ('laboratory', 'vital-signs')"),
    ("category=social-history", "category = 'social-history'"),
    ("category=survey", "category = 'survey'"),
    ("category=sdoh", "category = 'survey'"),  # every survey the demo holds is the Hunger Vital Sign, an SDOH screening
    ("category:not=laboratory", "category <> 'laboratory'"),
]


@pytest.mark.parametrize("query,where", CATEGORY_CASES, ids=[c[0] for c in CATEGORY_CASES])
def test_category(client, raw_db, cohort, query, where):
    api = obs_search(client, f"{query}&patient={','.join(cohort)}")
    assert_same_ids(api, obs_where(raw_db, f"({where}) AND {in_cohort(cohort)}"))


def test_category_wrong_system_or_code(client, cohort):
    patients = ",".join(cohort)
    assert obs_search(client, f"category={q('http://example.org/cat|laboratory')}&patient={patients}") == []
    assert obs_search(client, f"category={q('|laboratory')}&patient={patients}") == []
    assert obs_search(client, f"category=imaging&patient={patients}") == []
    assert obs_search(client, f"category=laboratory&patient={patients}")  # positive control


def test_category_totals(client, raw_db):
    for value in ("laboratory", "vital-signs"):
        bundle = get_json(client, f"/fhir/Observation?category={value}&_summary=count")
        assert bundle["total"] == len(obs_where(raw_db, "category = ?", (value,))) > 0


# --------------------------------------------------------------------------- code
GLOBAL_CODE_CASES = [
    ("code=" + q(f"{LOINC}|2345-7"), "loinc = '2345-7'"),
    ("code=2345-7", "loinc = '2345-7' OR local_code = '2345-7'"),
    ("code=" + q(f"{LAB_SYSTEM}|GLU"), "local_code = 'GLU'"),
    ("code=HGBA1C", "loinc = 'HGBA1C' OR local_code = 'HGBA1C'"),
    ("code=8867-4", "loinc = '8867-4'"),
    ("code=" + q(f"{LOINC}|85354-9"), "loinc = '85354-9'"),
    ("code=" + q(f"{LOINC}|39156-5"), "loinc = '39156-5'"),
    ("code=" + q(f"{LAB_SYSTEM}|UDS,{LOINC}|8302-2"), "local_code = 'UDS' OR loinc = '8302-2'"),
]


@pytest.mark.parametrize("query,where", GLOBAL_CODE_CASES, ids=[c[0] for c in GLOBAL_CODE_CASES])
def test_code(client, raw_db, query, where):
    assert_same_ids(obs_search(client, query), obs_where(raw_db, where))


def test_code_bp_panel_needs_both_pressures(client, raw_db):
    bp = set(obs_search(client, "code=85354-9"))
    expected = sql_ids(
        raw_db,
        "SELECT v.vs_guid || '-bp' FROM vitals v JOIN pt_master p ON p.pt_seq = v.pt_seq "
        "WHERE v.del_flg <> 'Y' AND p.del_flg <> 'Y' AND v.bp_sys IS NOT NULL AND v.bp_dia IS NOT NULL",
    )
    assert_same_ids(list(bp), expected)
    without = sql_ids(raw_db, "SELECT vs_guid || '-bp' FROM vitals WHERE bp_sys IS NULL OR bp_dia IS NULL")
    assert without and not bp & set(without)


COHORT_CODE_CASES = [
    ("code=" + q(f"{LOINC}|"), "loinc IS NOT NULL"),  # labs whose test has a LOINC code, and every vital sign
    ("code=" + q(f"{LAB_SYSTEM}|"), "local_code IS NOT NULL"),
    ("code:not=2345-7", "loinc IS NULL OR loinc <> '2345-7'"),
    (
        "code:not=" + q(f"{LOINC}|8867-4,{LAB_SYSTEM}|UDS"),
        "(loinc IS NULL OR loinc <> '8867-4') AND (local_code IS NULL OR local_code <> 'UDS')",
    ),
    ("code=2345-7,8867-4", "loinc IN ('2345-7', '8867-4')"),
    ("code=" + q(f"{LOINC}|2345-7") + "&code=" + q(f"{LAB_SYSTEM}|GLU"), "loinc = '2345-7' AND local_code = 'GLU'"),
    ("code=2345-7&code=8867-4", "0"),
]


@pytest.mark.parametrize("query,where", COHORT_CODE_CASES, ids=[c[0] for c in COHORT_CODE_CASES])
def test_code_on_cohort(client, raw_db, cohort, query, where):
    api = obs_search(client, f"{query}&patient={','.join(cohort)}")
    assert_same_ids(api, obs_where(raw_db, f"({where}) AND {in_cohort(cohort)}"), allow_empty=(where == "0"))


def test_code_any_loinc_leaves_out_labs_without_loinc(client, raw_db, cohort):
    api = set(obs_search(client, f"code={q(LOINC + '|')}&patient={','.join(cohort)}"))
    no_loinc = set(obs_where(raw_db, f"category = 'laboratory' AND loinc IS NULL AND {in_cohort(cohort)}"))
    vitals = set(obs_where(raw_db, f"category = 'vital-signs' AND {in_cohort(cohort)}"))
    assert no_loinc and vitals and vitals <= api and not no_loinc & api


def test_code_with_wrong_or_empty_system_finds_nothing(client, raw_db):
    assert obs_search(client, "code=" + q("|2345-7")) == []  # explicitly no system
    assert obs_search(client, "code=" + q("|8867-4")) == []
    assert obs_search(client, "code=" + q(f"{LOINC}|GLU")) == []  # a local code under the LOINC system
    assert obs_search(client, "code=" + q(f"{LAB_SYSTEM}|2345-7")) == []
    assert obs_search(client, "code=2345-7")  # positive control


# --------------------------------------------------------------------------- date
def _cohort_day(raw_db, cohort) -> str:
    """A day (YYYYMMDD) in the middle of the cohort's history."""
    days = [
        r[0]
        for r in raw_db.execute(f"{OBS} SELECT DISTINCT substr(dttm, 1, 8) FROM obs WHERE {VALID_DTTM} AND {in_cohort(cohort)} ORDER BY 1")
    ]
    return days[len(days) // 2]


def _date_where(prefix: str, low: str, high: str) -> str:
    """The stored value is a one-second range [t, t+1s) (a job: its days); the search value the range [low, high)."""
    return {
        "eq": f"dttm >= '{low}' AND hi < '{high}'",
        "ne": f"{VALID_DTTM} AND NOT (dttm >= '{low}' AND hi < '{high}')",
        "lt": f"{VALID_DTTM} AND dttm < '{low}'",
        "le": f"{VALID_DTTM} AND dttm < '{high}'",
        "gt": f"hi >= '{high}'",
        "ge": f"hi >= '{low}'",
        "sa": f"dttm >= '{high}'",
        "eb": f"{VALID_DTTM} AND hi < '{low}'",
    }[prefix]


@pytest.mark.parametrize("precision", ["day", "month"])
@pytest.mark.parametrize("prefix", ["eq", "ne", "lt", "gt", "le", "ge", "sa", "eb"])
def test_date_prefixes(client, raw_db, cohort, prefix, precision):
    day = _cohort_day(raw_db, cohort)
    y, m, d = int(day[:4]), int(day[4:6]), int(day[6:])
    if precision == "day":
        value = f"{y:04d}-{m:02d}-{d:02d}"
        low, high = day + "000000", (date(y, m, d) + timedelta(days=1)).strftime("%Y%m%d") + "000000"
    else:
        value = f"{y:04d}-{m:02d}"
        low, high = f"{y:04d}{m:02d}01000000", (f"{y + 1:04d}0101000000" if m == 12 else f"{y:04d}{m + 1:02d}01000000")
    api = obs_search(client, f"date={prefix}{value}&patient={','.join(cohort)}")
    assert_same_ids(api, obs_where(raw_db, f"({_date_where(prefix, low, high)}) AND {in_cohort(cohort)}"))
    junk = set(obs_where(raw_db, f"{JUNK_DTTM} AND {in_cohort(cohort)}"))
    assert junk and not junk & set(api), "junk collection/measure times must never match"


def test_date_with_time_zone(client, raw_db):
    # Legacy times are New York wall-clock time: 12:00Z is 08:00 in July (EDT) and 07:00 in January (EST).
    summer = obs_search(client, "date=ge2024-07-01T12:00:00Z&date=lt2024-07-02T12:00:00Z")
    assert_same_ids(summer, obs_where(raw_db, "hi >= '20240701080000' AND dttm < '20240702080000'"))
    assert_same_ids(obs_search(client, "date=ge2024-07-01T08:00:00&date=lt2024-07-02T08:00:00"), summer)
    assert_same_ids(obs_search(client, "date=" + q("ge2024-07-01T14:00:00+02:00") + "&date=lt2024-07-02T12:00:00Z"), summer)
    winter = obs_search(client, "date=ge2024-01-15T12:00:00Z&date=lt2024-01-16T00:00Z")
    assert_same_ids(winter, obs_where(raw_db, "hi >= '20240115070000' AND dttm < '20240115190000'"))
    # A time without a zone is New York time, not UTC: the same clock reading selects other rows.
    naive = obs_search(client, "date=ge2024-07-01T12:00:00&date=lt2024-07-02T12:00:00")
    assert_same_ids(naive, obs_where(raw_db, "hi >= '20240701120000' AND dttm < '20240702120000'"))
    assert set(naive) != set(summer)
    assert_same_ids(obs_search(client, "date=2024-07-01"), obs_where(raw_db, "dttm >= '20240701000000' AND hi < '20240702000000'"))


def test_date_at_second_precision(client, raw_db, patient):
    dttm = raw_db.execute(
        f"{OBS} SELECT dttm FROM obs WHERE pt_guid = ? AND {VALID_DTTM} ORDER BY dttm LIMIT 1 OFFSET 3", (patient,)
    ).fetchone()[0]
    value = f"{dttm[:4]}-{dttm[4:6]}-{dttm[6:8]}T{dttm[8:10]}:{dttm[10:12]}:{dttm[12:14]}"
    eq = obs_where(raw_db, "dttm >= ? AND hi <= ? AND pt_guid = ?", (dttm, dttm, patient))
    assert_same_ids(obs_search(client, f"date={value}&patient={patient}"), eq)
    assert_same_ids(obs_search(client, f"date=gt{value}&patient={patient}"), obs_where(raw_db, "hi > ? AND pt_guid = ?", (dttm, patient)))
    assert_same_ids(
        obs_search(client, f"date=le{value}&patient={patient}"),
        obs_where(raw_db, f"{VALID_DTTM} AND dttm <= ? AND pt_guid = ?", (dttm, patient)),
    )


# --------------------------------------------------------------------------- status
STATUS_CASES = [
    ("status=preliminary", "status = 'preliminary'", None),
    ("status=corrected", "status = 'corrected'", None),
    ("status=cancelled", "status = 'cancelled'", None),
    ("status=" + q(f"{STATUS}|cancelled"), "status = 'cancelled'", None),
    ("status=preliminary,corrected", "status IN ('preliminary', 'corrected')", None),
    ("status:not=final", "status <> 'final'", None),
    ("status=final", "status = 'final'", "cohort"),
    ("status=final&category=vital-signs", "status = 'final' AND category = 'vital-signs'", "cohort"),
    ("status=final&category=laboratory", "status = 'final' AND category = 'laboratory'", "cohort"),
]


@pytest.mark.parametrize("query,where,scope", STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_status(client, raw_db, cohort, query, where, scope):
    if scope == "cohort":
        query, where = f"{query}&patient={','.join(cohort)}", f"({where}) AND {in_cohort(cohort)}"
    assert_same_ids(obs_search(client, query), obs_where(raw_db, where))


def test_status_vitals_are_always_final(client, raw_db):
    assert not [i for i in obs_search(client, "status:not=final") if not _is_lab(i)]
    assert obs_search(client, "status=unknown") == obs_where(raw_db, "status = 'unknown'") == []
    assert obs_search(client, "status=" + q("http://example.org/status|final")) == []
    assert len(obs_search(client, "status=cancelled&category=vital-signs")) == 0
    assert obs_search(client, "status=cancelled&category=laboratory")  # positive control


def _is_lab(observation_id: str) -> bool:
    return not any(observation_id.endswith(f"-{name}") for name, _, _ in VITALS)


# --------------------------------------------------------------------------- sorting
@pytest.mark.parametrize("sort", ["date", "-date"])
def test_sort_by_date(client, raw_db, cohort, sort):
    resources = search_resources(client, f"/fhir/Observation?patient={','.join(cohort)}&_sort={sort}&_count=1000")
    order = "DESC" if sort.startswith("-") else "ASC"
    rows = raw_db.execute(f"{OBS} SELECT id, dttm FROM obs WHERE {in_cohort(cohort)} ORDER BY dttm {order}").fetchall()
    assert_same_ids([r["id"] for r in resources], [r[0] for r in rows])
    # Junk times sort as the lowest values and have no effectiveDateTime.
    expected_dates = [d if d and d >= "00010101000000" else None for _, d in rows]
    assert [legacy_dttm(r) for r in resources] == expected_dates
    assert None in expected_dates
    # Each resource's own date matches its legacy row (no mix-up of rows and keys).
    by_id = dict(rows)
    assert all(legacy_dttm(r) == (by_id[r["id"]] if by_id[r["id"]] >= "00010101000000" else None) for r in resources)


def test_sort_is_deterministic_across_page_sizes(client, cohort):
    patients = ",".join(cohort[:2])
    for sort in ("date", "-date"):
        whole = search_ids(client, f"/fhir/Observation?patient={patients}&_sort={sort}&_count=1000")
        assert search_ids(client, f"/fhir/Observation?patient={patients}&_sort={sort}&_count=1000") == whole
        assert search_ids(client, f"/fhir/Observation?patient={patients}&_sort={sort}&_count=7") == whole
    default = search_ids(client, f"/fhir/Observation?patient={patients}&_count=1000")
    assert default == search_ids(client, f"/fhir/Observation?patient={patients}&_sort=-date&_count=1000")


def test_sort_rejects_unsortable(client):
    assert get_json(client, "/fhir/Observation?_sort=code", status=400)["resourceType"] == "OperationOutcome"


# --------------------------------------------------------------------------- GET vs POST
@pytest.mark.parametrize(
    "pairs",
    [
        [("category", "laboratory"), ("code", f"{LOINC}|2345-7"), ("_count", "50")],
        [("date", "ge2024-01-01"), ("date", "lt2024-03-01"), ("code", "8867-4,85354-9"), ("_sort", "date"), ("_count", "40")],
        [("status", "corrected,cancelled"), ("_count", "25"), ("_total", "accurate")],
    ],
)
def test_get_and_post_search_agree(client, pairs):
    get = client.get("/fhir/Observation?" + urlencode(pairs))
    post = client.post("/fhir/Observation/_search", data=urlencode(pairs), content_type="application/x-www-form-urlencoded")
    assert get.status_code == post.status_code == 200
    get_bundle, post_bundle = get.get_json(), post.get_json()
    assert get_bundle.get("entry") and get_bundle["entry"] == post_bundle["entry"]
    assert get_bundle.get("total") == post_bundle.get("total")
    assert [link["url"] for link in get_bundle["link"]] == [link["url"] for link in post_bundle["link"]]
    # and following the links gives the same whole result
    assert search_ids(client, get_bundle["link"][0]["url"]) == search_ids(client, post_bundle["link"][0]["url"])
