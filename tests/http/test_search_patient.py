"""Patient search semantics, checked against hand-written SQL on the legacy tables.

Every test compares the ids the API returns (all pages, following ``next``
links) with ids computed directly from ``pt_master`` through ``raw_db``; the
façade's own code is never used to compute an expected answer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import date, timedelta

import pytest

from facade.app import create_app
from facade.config import Settings
from legacy_adapters.sources.demo.generate import generate
from support.fhir_client import assert_same_ids, get_json, q, search_ids, sql_ids

BASE = "http://testserver/fhir"
NOT_DELETED = "COALESCE(p.del_flg, 'N') <> 'Y'"
JUNK_DOB = ("", "00000000")
VALID_DOB = "p.dob IS NOT NULL AND p.dob NOT IN ('', '00000000')"


# --------------------------------------------------------------------------- helpers
def patients_where(raw_db, where: str, params: tuple = ()) -> list[str]:
    return sql_ids(raw_db, f"SELECT p.pt_guid FROM pt_master p WHERE {NOT_DELETED} AND ({where})", params)


def patient_search(client, query: str) -> list[str]:
    return search_ids(client, f"/fhir/Patient?{query}&_count=1000")


def db_checksum(raw_db) -> tuple:
    tables = [row[0] for row in raw_db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    counts = tuple((t, raw_db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables)
    deleted = raw_db.execute("SELECT count(*) FROM pt_master WHERE del_flg = 'Y'").fetchone()[0]
    schema = raw_db.execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()[0]
    return counts, deleted, schema, raw_db.execute("PRAGMA data_version").fetchone()[0]


# --------------------------------------------------------------------------- whole set, _id, soft delete
def test_all_patients_exclude_soft_deleted(client, raw_db):
    deleted = sql_ids(raw_db, "SELECT pt_guid FROM pt_master WHERE del_flg = 'Y'")
    assert deleted, "demo data has soft-deleted patients"
    api = search_ids(client, "/fhir/Patient?_count=1000")
    assert_same_ids(api, patients_where(raw_db, "1 = 1"))
    assert not set(api) & set(deleted)
    for guid in deleted[:3]:
        assert get_json(client, f"/fhir/Patient?_id={guid}").get("entry") is None
        assert client.get(f"/fhir/Patient/{guid}").status_code == 404


def test_id_single_and_or_list(client, raw_db):
    guids = sql_ids(raw_db, f"SELECT pt_guid FROM pt_master p WHERE {NOT_DELETED} ORDER BY pt_seq LIMIT 3 OFFSET 10")
    deleted = sql_ids(raw_db, "SELECT pt_guid FROM pt_master WHERE del_flg = 'Y' LIMIT 1")
    assert patient_search(client, f"_id={guids[0]}") == [guids[0]]
    assert_same_ids(patient_search(client, "_id=" + ",".join(guids)), guids)
    # unknown and soft-deleted ids in the OR list are simply not matched
    assert_same_ids(patient_search(client, f"_id={guids[1]},no-such-id,{deleted[0]}"), [guids[1]])
    assert patient_search(client, f"_id={guids[0].upper()}") == []  # ids are exact


# --------------------------------------------------------------------------- identifier
def test_identifier(client, raw_db):
    mrn, guid = raw_db.execute(f"SELECT mrn, pt_guid FROM pt_master p WHERE {NOT_DELETED} ORDER BY pt_seq LIMIT 1 OFFSET 42").fetchone()
    assert patient_search(client, f"identifier={mrn}") == [guid]
    assert patient_search(client, f"identifier={q('urn:fhir-facade:demo:mrn|' + mrn)}") == [guid]
    assert patient_search(client, f"identifier={q('urn:fhir-facade:demo:other|' + mrn)}") == []
    assert patient_search(client, f"identifier={q('|' + mrn)}") == []  # explicitly no system
    assert patient_search(client, f"identifier={mrn[:-1]}") == []  # tokens are not prefixes
    other_mrn, other = raw_db.execute(
        f"SELECT mrn, pt_guid FROM pt_master p WHERE {NOT_DELETED} ORDER BY pt_seq LIMIT 1 OFFSET 77"
    ).fetchone()
    assert_same_ids(patient_search(client, f"identifier={mrn},{q('urn:fhir-facade:demo:mrn|' + other_mrn)}"), [guid, other])
    # system with no code: every patient with an MRN
    assert_same_ids(
        patient_search(client, f"identifier={q('urn:fhir-facade:demo:mrn|')}"), patients_where(raw_db, "p.mrn IS NOT NULL AND p.mrn <> ''")
    )


# --------------------------------------------------------------------------- name, family, given
STARTS = "instr(upper({col}), upper(?)) = 1"
CONTAINS = "instr(upper({col}), upper(?)) > 0"

STRING_CASES = [
    # (query, SQL where, params)
    ("family=smi", STARTS.format(col="p.last_nm"), ("smi",)),
    ("family=SMITH", STARTS.format(col="p.last_nm"), ("SMITH",)),  # finds SMITH and SMITH-JONES
    ("family=o'c", STARTS.format(col="p.last_nm"), ("o'c",)),
    ("family=de la", STARTS.format(col="p.last_nm"), ("de la",)),
    ("family=st.", STARTS.format(col="p.last_nm"), ("st.",)),
    ("given=anne", STARTS.format(col="p.first_nm"), ("anne",)),
    ("given=Jo", STARTS.format(col="p.first_nm"), ("jo",)),
    ("name=smi", f"{STARTS.format(col='p.last_nm')} OR {STARTS.format(col='p.first_nm')}", ("smi", "smi")),
    ("name=jo", f"{STARTS.format(col='p.last_nm')} OR {STARTS.format(col='p.first_nm')}", ("jo", "jo")),
    ("name=smi,garc", " OR ".join([STARTS.format(col="p.last_nm"), STARTS.format(col="p.first_nm")] * 2), ("smi", "smi", "garc", "garc")),
    ("family:exact=Smith", "p.last_nm = 'SMITH'", ()),
    ("family:exact=Smith-Jones", "p.last_nm = 'SMITH-JONES'", ()),
    ("given:exact=Anne-Marie", "p.first_nm = 'ANNE-MARIE'", ()),
    ("family:contains=son", CONTAINS.format(col="p.last_nm"), ("son",)),
    ("family:contains=JONES", CONTAINS.format(col="p.last_nm"), ("jones",)),
    ("given:contains=-", CONTAINS.format(col="p.first_nm"), ("-",)),
    ("name:contains=ari", f"{CONTAINS.format(col='p.last_nm')} OR {CONTAINS.format(col='p.first_nm')}", ("ari", "ari")),
]


@pytest.mark.parametrize("query,where,params", STRING_CASES, ids=[c[0] for c in STRING_CASES])
def test_string_params(client, raw_db, query, where, params):
    name, _, value = query.partition("=")
    assert_same_ids(patient_search(client, f"{name}={q(value)}"), patients_where(raw_db, where, params))


def test_string_modifiers_really_differ(client, raw_db):
    """Starts-with, :exact and :contains give different answers on the same data."""
    starts = set(patient_search(client, "family=smith"))
    exact = set(patient_search(client, "family:exact=Smith"))
    contains = set(patient_search(client, "family:contains=jones"))
    assert exact < starts  # SMITH-JONES starts with SMITH but is not exactly Smith
    assert starts & contains and contains - starts  # SMITH-JONES in both; JONES only contains
    assert patient_search(client, "family:exact=Smi") == []


def test_escaped_comma_is_one_value(client, raw_db):
    assert_same_ids(
        patient_search(client, "family=smith,jones"), patients_where(raw_db, "p.last_nm LIKE 'SMITH%' OR p.last_nm LIKE 'JONES%'")
    )
    assert patient_search(client, "family=" + q("smith\\,jones")) == []


# --------------------------------------------------------------------------- birthdate
def test_junk_dob_values_are_the_ones_expected(raw_db):
    """The hand-written VALID_DOB guard knows every junk value in the data."""
    odd = {
        r[0]
        for r in raw_db.execute(
            "SELECT DISTINCT dob FROM pt_master WHERE dob IS NULL OR dob NOT GLOB '[12][0-9][0-9][0-9][01][0-9][0-3][0-9]'"
        )
    }
    assert odd and odd <= set(JUNK_DOB) | {None}


def _prefix_where(prefix: str, low: str, high: str) -> str:
    """Stored dob is a one-day range [d, d+1); the search value the range [low, high) (R4 §3.1.1.4.7)."""
    return {
        "eq": f"p.dob >= '{low}' AND p.dob < '{high}'",
        "ne": f"{VALID_DOB} AND NOT (p.dob >= '{low}' AND p.dob < '{high}')",
        "lt": f"{VALID_DOB} AND p.dob < '{low}'",
        "le": f"{VALID_DOB} AND p.dob < '{high}'",
        "gt": f"p.dob >= '{high}'",
        "ge": f"p.dob >= '{low}'",
        "sa": f"p.dob >= '{high}'",
        "eb": f"{VALID_DOB} AND p.dob < '{low}'",
    }[prefix]


def _sample_day(raw_db) -> date:
    dob = raw_db.execute(f"SELECT dob FROM pt_master p WHERE {NOT_DELETED} AND {VALID_DOB} ORDER BY pt_seq LIMIT 1 OFFSET 333").fetchone()[
        0
    ]
    return date(int(dob[:4]), int(dob[4:6]), int(dob[6:]))


@pytest.mark.parametrize("precision", ["year", "month", "day"])
@pytest.mark.parametrize("prefix", ["eq", "ne", "lt", "gt", "le", "ge", "sa", "eb"])
def test_birthdate_prefixes(client, raw_db, prefix, precision):
    day = _sample_day(raw_db)
    if precision == "year":
        value, low, high = f"{day.year}", date(day.year, 1, 1), date(day.year + 1, 1, 1)
    elif precision == "month":
        low = day.replace(day=1)
        high = (low + timedelta(days=32)).replace(day=1)
        value = low.strftime("%Y-%m")
    else:
        value, low, high = day.isoformat(), day, day + timedelta(days=1)
    where = _prefix_where(prefix, low.strftime("%Y%m%d"), high.strftime("%Y%m%d"))
    api = patient_search(client, f"birthdate={prefix}{value}")
    assert_same_ids(api, patients_where(raw_db, where))
    junk = set(patients_where(raw_db, "p.dob IS NULL OR p.dob IN ('', '00000000')"))
    assert junk and not junk & set(api), "junk dob values must never match"


def test_birthdate_without_prefix_is_eq(client, raw_db):
    day = _sample_day(raw_db)
    assert_same_ids(patient_search(client, f"birthdate={day.isoformat()}"), patient_search(client, f"birthdate=eq{day.isoformat()}"))
    assert patient_search(client, f"birthdate={day.isoformat()}")


def test_birthdate_finer_than_day_separates_gt_from_sa(client, raw_db):
    """A search value at minute precision lies inside a birth day: gt keeps that day, sa does not."""
    day = _sample_day(raw_db)
    d0, d1 = day.strftime("%Y%m%d"), (day + timedelta(days=1)).strftime("%Y%m%d")
    value = f"{day.isoformat()}T10:00"
    gt = patient_search(client, f"birthdate=gt{value}")
    sa = patient_search(client, f"birthdate=sa{value}")
    assert_same_ids(gt, patients_where(raw_db, f"p.dob >= '{d0}'"))
    assert_same_ids(sa, patients_where(raw_db, f"p.dob >= '{d1}'"))
    assert_same_ids(patient_search(client, f"birthdate=eb{value}"), patients_where(raw_db, f"{VALID_DOB} AND p.dob < '{d0}'"))
    assert_same_ids(patient_search(client, f"birthdate=lt{value}"), patients_where(raw_db, f"{VALID_DOB} AND p.dob < '{d1}'"))
    assert patient_search(client, f"birthdate=eq{value}") == []  # a minute cannot contain a whole day
    assert_same_ids(patient_search(client, f"birthdate=ne{value}"), patients_where(raw_db, VALID_DOB))


def test_birthdate_repeated_is_and(client, raw_db):
    api = patient_search(client, "birthdate=ge1950&birthdate=lt1960")
    assert_same_ids(api, patients_where(raw_db, "p.dob >= '19500101' AND p.dob < '19600101'"))
    assert_same_ids(
        patient_search(client, "birthdate=lt1940,ge2020"),
        patients_where(raw_db, f"({VALID_DOB} AND p.dob < '19400101') OR p.dob >= '20200101'"),
    )


def test_birthdate_missing(client, raw_db):
    assert_same_ids(patient_search(client, "birthdate:missing=true"), patients_where(raw_db, "p.dob IS NULL OR p.dob IN ('', '00000000')"))
    assert_same_ids(patient_search(client, "birthdate:missing=false"), patients_where(raw_db, VALID_DOB))


@pytest.fixture(scope="module")
def null_dob(tmp_path_factory):
    """A small demo database where some birth dates are NULL (the default demo has only '' and '00000000')."""
    path = str(tmp_path_factory.mktemp("null_dob") / "demo.sqlite")
    generate(path, patients=40)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE pt_master SET dob = NULL WHERE pt_seq IN (2, 3, 5, 7)")
        db.commit()
    app = create_app(Settings(auth_mode="off", demo_path=path, base_url=BASE))
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        yield app.test_client(), db


def test_null_birthdate_is_missing_and_matches_no_prefix(null_dob):
    client, db = null_dob
    nulls = patients_where(db, "p.dob IS NULL")
    assert nulls
    assert_same_ids(patient_search(client, "birthdate:missing=true"), patients_where(db, "p.dob IS NULL OR p.dob IN ('', '00000000')"))
    assert_same_ids(patient_search(client, "birthdate:missing=false"), patients_where(db, VALID_DOB))
    for prefix in ("ne", "lt", "le", "eb", "ge", "gt", "sa", "eq"):
        assert not set(nulls) & set(patient_search(client, f"birthdate={prefix}1980")), prefix
    # NULL sort keys sort lowest; paging through them neither repeats nor skips
    everyone = patients_where(db, "1 = 1")
    for sort in ("birthdate", "-birthdate"):
        ids = search_ids(client, f"/fhir/Patient?_sort={sort}&_count=2")
        assert_same_ids(ids, everyone)
        assert (set(ids[: len(nulls)]) if sort == "birthdate" else set(ids[-len(nulls) :])) == set(nulls)


# --------------------------------------------------------------------------- gender
GENDER_CASES = [
    ("gender=male", "p.sex_cd = 'M'"),
    ("gender=female", "p.sex_cd = 'F'"),
    ("gender=unknown", "p.sex_cd IS NULL OR p.sex_cd NOT IN ('M', 'F')"),  # 'U', NULL and ''
    ("gender=" + q("http://hl7.org/fhir/administrative-gender|female"), "p.sex_cd = 'F'"),
    ("gender=male,unknown", "p.sex_cd IS NULL OR p.sex_cd <> 'F'"),
    ("gender:not=male", "p.sex_cd IS NULL OR p.sex_cd <> 'M'"),
    ("gender:not=unknown", "p.sex_cd IN ('M', 'F')"),
]


@pytest.mark.parametrize("query,where", GENDER_CASES, ids=[c[0] for c in GENDER_CASES])
def test_gender(client, raw_db, query, where):
    assert_same_ids(patient_search(client, query), patients_where(raw_db, where))


def test_gender_unknown_covers_null_and_u(client, raw_db):
    unknown = set(patient_search(client, "gender=unknown"))
    for where in ("p.sex_cd IS NULL", "p.sex_cd = 'U'"):
        group = set(patients_where(raw_db, where))
        assert group and group <= unknown
    assert patient_search(client, "gender=other") == []
    assert patient_search(client, "gender=" + q("http://example.org/gender|male")) == []


# --------------------------------------------------------------------------- combinations, _lastUpdated
def test_different_params_are_anded(client, raw_db):
    api = patient_search(client, "family=smith&gender=female&birthdate=lt1990")
    where = f"p.last_nm LIKE 'SMITH%' AND p.sex_cd = 'F' AND {VALID_DOB} AND p.dob < '19900101'"
    assert_same_ids(api, patients_where(raw_db, where))


LAST_UPDATED_CASES = [
    ("_lastUpdated=ge2026-01-01", "p.upd_dttm >= '20260101000000'"),
    ("_lastUpdated=lt2022", "p.upd_dttm >= '00010101000000' AND p.upd_dttm < '20220101000000'"),
    ("_lastUpdated=2025-03", "p.upd_dttm >= '20250301000000' AND p.upd_dttm < '20250401000000'"),
    # 12:00Z on 2025-07-01 is 08:00 in New York (EDT)
    ("_lastUpdated=ge2025-07-01T12:00:00Z&_lastUpdated=lt2025-08-01", "p.upd_dttm >= '20250701080000' AND p.upd_dttm < '20250801000000'"),
]


@pytest.mark.parametrize("query,where", LAST_UPDATED_CASES, ids=[c[0] for c in LAST_UPDATED_CASES])
def test_last_updated(client, raw_db, query, where):
    assert_same_ids(patient_search(client, query), patients_where(raw_db, where))


def test_last_updated_in_utc_is_converted_to_legacy_local_time(client, raw_db):
    """upd_dttm is New York time; in July that is UTC-4, so [stamp, stamp + 1h) local is [stamp + 4h, stamp + 5h) in UTC."""
    stamp = raw_db.execute(
        f"SELECT p.upd_dttm FROM pt_master p WHERE {NOT_DELETED} AND substr(p.upd_dttm, 5, 2) = '07' "
        "AND substr(p.upd_dttm, 9, 2) BETWEEN '08' AND '17' ORDER BY p.upd_dttm LIMIT 1"
    ).fetchone()[0]
    day, hour, rest = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}", int(stamp[8:10]), f"{stamp[10:12]}:{stamp[12:14]}"
    api = patient_search(client, f"_lastUpdated=ge{day}T{hour + 4:02d}:{rest}Z&_lastUpdated=lt{day}T{hour + 5:02d}:{rest}Z")
    one_hour_later = f"{stamp[:8]}{hour + 1:02d}{stamp[10:]}"
    assert_same_ids(api, patients_where(raw_db, "p.upd_dttm >= ? AND p.upd_dttm < ?", (stamp, one_hour_later)))


# --------------------------------------------------------------------------- merged duplicates
def test_merged_duplicate_is_inactive_and_linked(client, raw_db):
    rows = raw_db.execute(
        f"SELECT p.pt_guid, s.pt_guid FROM pt_master p JOIN pt_master s ON s.pt_seq = p.merged_to_seq WHERE {NOT_DELETED}"
    ).fetchall()
    assert rows, "demo data has merged duplicates"
    for dup, survivor in rows[:3]:
        bundle = get_json(client, f"/fhir/Patient?_id={dup},{survivor}")
        by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
        assert set(by_id) == {dup, survivor}
        assert by_id[dup]["active"] is False
        assert by_id[dup]["link"] == [{"other": {"reference": f"Patient/{survivor}"}, "type": "replaced-by"}]
        assert by_id[survivor]["active"] is True
        assert "link" not in by_id[survivor]
    # the duplicate is still found by ordinary searches (it is not deleted)
    dup = rows[0][0]
    mrn = raw_db.execute("SELECT mrn FROM pt_master WHERE pt_guid = ?", (dup,)).fetchone()[0]
    assert patient_search(client, f"identifier={mrn}") == [dup]


# --------------------------------------------------------------------------- injection-shaped values
INJECTION_CASES = [
    # (query, expected: None = must be 400, or SQL where giving the matches (usually none))
    ("name=" + q("' OR 1=1 --"), (f"{STARTS.format(col='p.last_nm')} OR {STARTS.format(col='p.first_nm')}", ("' OR 1=1 --",) * 2)),
    ("name=" + q("SMITH' OR '1'='1"), ("0", ())),
    ("family=" + q("%"), ("0", ())),
    ("family=" + q("_"), ("0", ())),
    ("family=" + q("SMI%"), ("0", ())),
    ("family=" + q("SM_TH"), ("0", ())),
    ("family:contains=" + q("%"), ("0", ())),
    ("family:contains=" + q("_"), ("0", ())),
    ("family:exact=" + q("SMITH%"), ("0", ())),
    ("family=" + q("O\\'CONNOR"), ("0", ())),  # a backslash that escapes nothing is a literal backslash
    ("family=" + q("\\"), ("0", ())),
    ("family=" + q("\\%"), ("0", ())),
    ("given:contains=" + q("\\_"), ("0", ())),
    ("family=" + q("O'CONNOR"), ("p.last_nm = 'O''CONNOR'", ())),  # a quote is just a character
    ("family=" + q("'; DROP TABLE pt_master; --"), ("0", ())),
    ("_id=" + q("1' OR '1'='1"), ("0", ())),
    ("_id=" + q("%"), ("0", ())),
    ("identifier=" + q("MRN%"), ("0", ())),
    ("identifier=" + q("' OR ''='"), ("0", ())),
    ("gender=" + q("male' OR '1'='1"), ("0", ())),
    ("identifier=" + q("x|y|z"), None),
    ("birthdate=" + q("2020'--"), None),
    ("birthdate=" + q("1960; DELETE FROM pt_master"), None),
    ("_sort=" + q("family; DROP TABLE pt_master"), None),
    ("_count=" + q("1; DELETE FROM pt_master"), None),
    ("birthdate=9999-12-31", None),  # out-of-range bounds: a 400, not a 500
    ("birthdate=" + q("lt0001-01-01T00:00:00+01:00"), None),
    ("name:contains=%00", None),  # NUL would end a LIKE pattern early and match everything
    ("family=" + q("SMI\x00TH"), None),
]


def test_injection_shaped_values_are_harmless(client, raw_db):
    before = db_checksum(raw_db)
    for query, expected in INJECTION_CASES:
        response = client.get(f"/fhir/Patient?{query}&_count=1000")
        assert response.status_code != 500, query
        body = response.get_json()
        if expected is None:
            assert response.status_code == 400, (query, response.status_code)
            assert body["resourceType"] == "OperationOutcome"
            continue
        assert response.status_code == 200, (query, response.status_code, body)
        where, params = expected
        api = [e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]
        assert_same_ids(api, patients_where(raw_db, where, params), allow_empty=True)
    # Observation parameters take the same care
    for query in (
        "patient=" + q("' OR 1=1--"),
        "code=" + q("x' OR 'a'='a"),
        "code=" + q("%"),
        "category=" + q("laboratory' --"),
        "status=" + q("final'; DELETE FROM lab_result; --"),
        "_id=" + q("%-pulse"),
    ):
        bundle = get_json(client, f"/fhir/Observation?{query}")
        assert "entry" not in bundle, query
    for query in ("date=" + q("2020-01-01'; --"), "patient=" + q("Group/1' OR 1=1"), "date=" + q("lt0001-01-01T00:00:00Z")):
        assert client.get(f"/fhir/Observation?{query}").status_code == 400, query
    assert db_checksum(raw_db) == before
    # positive control: the same machinery does find plain matches
    assert patient_search(client, "family=SMITH")
