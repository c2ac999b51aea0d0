"""Keyset paging: every match exactly once, page sizes, links, cursors and totals.

Expected answers come from hand-written SQL against the legacy tables via
``raw_db``; the façade's own code is never used to compute them.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from support.fhir_client import entry_ids, get_json, link, search_ids, sql_ids, walk_back
from support.fhir_client import walk as _walk

BASE = "http://testserver/fhir"
VITAL_VARIANTS = [  # (variant, columns that must be non-null)
    ("pulse", ["pulse"]),
    ("resp", ["resp_rate"]),
    ("temp", ["temp_f"]),
    ("weight", ["wt_lb"]),
    ("height", ["ht_in"]),
    ("spo2", ["spo2"]),
    ("headcirc", ["head_circ_cm"]),
    ("bmi", ["wt_lb", "ht_in"]),
    ("bp", ["bp_sys", "bp_dia"]),
    ("bmiage", ["bmi_pctl"]),
    ("wtlen", ["wt_len_pctl"]),
    ("headpctl", ["hc_pctl"]),
]
HUNGER = "IN ('O', 'S', 'N', 'R')"
ANSWERED = [  # (variant, category, table, guid column, time column, the condition for an Observation)
    ("status", "social-history", "ob_hx", "ob_guid", "rec_dttm", "x.preg_yn IN ('Y', 'N', 'U')"),
    ("intent", "social-history", "ob_hx", "ob_guid", "rec_dttm", "x.preg_intent IN ('Y', 'N', 'U')"),
    ("panel", "survey", "hvs_form", "hvs_guid", "form_dttm", f"x.q1_ans {HUNGER} OR x.q2_ans {HUNGER}"),
    ("q1", "survey", "hvs_form", "hvs_guid", "form_dttm", f"x.q1_ans {HUNGER}"),
    ("q2", "survey", "hvs_form", "hvs_guid", "form_dttm", f"x.q2_ans {HUNGER}"),
]
OBS = (
    "WITH obs(id, pt_seq, category, dttm) AS (\n"
    + "\n UNION ALL\n".join(
        [
            "SELECT r.res_guid, r.pt_seq, 'laboratory', r.collect_dttm FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq "
            "WHERE r.del_flg <> 'Y' AND p.del_flg <> 'Y'"
        ]
        + [
            f"SELECT v.vs_guid || '-{name}', v.pt_seq, 'vital-signs', v.taken_dttm FROM vitals v JOIN pt_master p ON p.pt_seq = v.pt_seq "
            f"WHERE v.del_flg <> 'Y' AND p.del_flg <> 'Y' AND " + " AND ".join(f"v.{c} IS NOT NULL" for c in columns)
            for name, columns in VITAL_VARIANTS
        ]
        + [
            "SELECT h.sh_guid, h.pt_seq, 'social-history', h.rec_dttm FROM soc_hx h JOIN pt_master p ON p.pt_seq = h.pt_seq "
            "WHERE h.del_flg <> 'Y' AND p.del_flg <> 'Y'",
            # a job sorts by its start day, as the legacy keeps it
            "SELECT j.emp_guid, j.pt_seq, 'social-history', j.start_dt FROM emp_hx j JOIN pt_master p ON p.pt_seq = j.pt_seq "
            "WHERE j.del_flg <> 'Y' AND p.del_flg <> 'Y' AND j.occ_desc <> ''",
        ]
        + [
            f"SELECT x.{guid} || '-{name}', x.pt_seq, '{category}', x.{when} FROM {table} x JOIN pt_master p ON p.pt_seq = x.pt_seq "
            f"WHERE x.del_flg <> 'Y' AND p.del_flg <> 'Y' AND ({answered})"
            for name, category, table, guid, when, answered in ANSWERED
        ]
    )
    + "\n)\n"
)
PATIENTS = "SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y'"


# --------------------------------------------------------------------------- helpers
def _next_under_base(bundle: dict) -> None:
    url = link(bundle, "next")
    assert url is None or url.startswith(BASE + "/"), url


def walk(client, path: str) -> list[dict]:
    """Every page of a search; each ``next`` link must be an absolute URL under BASE."""
    return _walk(client, path, on_page=_next_under_base)


def query_params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def cursor_of(url: str) -> str:
    return dict(query_params(url))["_cursor"]


def decode(token: str) -> list:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def encode(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


def assert_paged_exactly_once(pages: list[dict], expected: list[str], count: int) -> list[str]:
    """Pages hold at most ``count`` entries (exactly ``count`` but the last), only the last lacks ``next``,
    and together they hold every expected id exactly once."""
    assert len(pages) > 1, "the search must span several pages for this test to mean anything"
    for page in pages[:-1]:
        assert len(entry_ids(page)) == count
        assert link(page, "next")
    assert 0 < len(entry_ids(pages[-1])) <= count
    assert link(pages[-1], "next") is None
    ids = [i for page in pages for i in entry_ids(page)]
    assert len(ids) == len(set(ids)), "an entry appeared on more than one page"
    assert len(ids) == len(expected)
    assert set(ids) == set(expected)
    return ids


def legacy_dttm(resource: dict) -> str | None:
    value = resource.get("effectiveDateTime")
    if value is None and "effectivePeriod" in resource:  # a job: its start day
        return resource["effectivePeriod"]["start"].replace("-", "")
    return None if value is None else value[:19].replace("-", "").replace("T", "").replace(":", "")


# --------------------------------------------------------------------------- the three big walks
def test_all_patients_in_pages_of_37(client, raw_db):
    pages = walk(client, "/fhir/Patient?_count=37")
    expected = sql_ids(raw_db, PATIENTS)
    assert raw_db.execute("SELECT count(*) FROM pt_master WHERE del_flg <> 'Y'").fetchone()[0] == len(expected)
    assert_paged_exactly_once(pages, expected, 37)
    for i, page in enumerate(pages):
        params = query_params(link(page, "self"))
        assert ("_count", "37") in params
        if i:  # a followed page's self link is the previous page's next link
            assert link(page, "self") == link(pages[i - 1], "next")


def test_chronic_patient_observations_in_pages_of_50(client, raw_db):
    guid = raw_db.execute("SELECT pt_guid FROM pt_master WHERE pt_seq = 1").fetchone()[0]
    rows = raw_db.execute(f"{OBS} SELECT id, dttm FROM obs WHERE pt_seq = 1 ORDER BY dttm DESC").fetchall()
    assert len(rows) > 2000
    pages = walk(client, f"/fhir/Observation?patient={guid}&_count=50")
    assert_paged_exactly_once(pages, [r[0] for r in rows], 50)
    # default sort is -date: newest first, junk times (no effectiveDateTime) last
    dates = [legacy_dttm(e["resource"]) for page in pages for e in page["entry"]]
    assert dates == [d if d >= "00010101000000" else None for _, d in rows]
    assert None in dates


def test_vital_signs_in_pages_of_500(client, raw_db):
    expected = sql_ids(raw_db, f"{OBS} SELECT id FROM obs WHERE category = 'vital-signs'")
    pages = walk(client, "/fhir/Observation?category=vital-signs&_count=500")
    assert_paged_exactly_once(pages, expected, 500)
    assert all(("category", "vital-signs") in query_params(link(p, "self")) for p in pages)


# --------------------------------------------------------------------------- ties in the sort keys
def test_ties_on_date_do_not_duplicate_or_skip(client, raw_db):
    """A vitals row gives up to 8 Observations with one taken_dttm, a lab panel several with one collect_dttm."""
    seq = raw_db.execute(
        f"{OBS} SELECT pt_seq FROM (SELECT pt_seq, dttm, count(*) n FROM obs WHERE pt_seq > 1 GROUP BY pt_seq, dttm) "
        "GROUP BY pt_seq HAVING max(n) >= 8 AND sum(n) BETWEEN 40 AND 200 ORDER BY pt_seq LIMIT 1"
    ).fetchone()[0]
    guid = raw_db.execute("SELECT pt_guid FROM pt_master WHERE pt_seq = ?", (seq,)).fetchone()[0]
    expected = sql_ids(raw_db, f"{OBS} SELECT id FROM obs WHERE pt_seq = ?", (seq,))
    for sort, count in (("date", 3), ("-date", 7), ("-date,_id", 4)):
        pages = walk(client, f"/fhir/Observation?patient={guid}&_sort={sort}&_count={count}")
        ids = assert_paged_exactly_once(pages, expected, count)
        # some page boundary falls inside a group of equal dates, so the tie-breakers were exercised
        assert any(legacy_dttm(a["entry"][-1]["resource"]) == legacy_dttm(b["entry"][0]["resource"]) for a, b in zip(pages, pages[1:]))
        assert ids == search_ids(client, f"/fhir/Observation?patient={guid}&_sort={sort}&_count=1000", _next_under_base)


def test_ties_across_patients_on_one_day(client, raw_db):
    day = raw_db.execute(
        f"{OBS} SELECT substr(dttm, 1, 8) d FROM obs WHERE pt_seq > 1 AND dttm > '1' GROUP BY d ORDER BY count(*) DESC, d LIMIT 1"
    ).fetchone()[0]
    expected = sql_ids(raw_db, f"{OBS} SELECT id FROM obs WHERE dttm >= ? AND dttm < ?", (day + "000000", day + "999999"))
    value = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    assert_paged_exactly_once(walk(client, f"/fhir/Observation?date={value}&_count=4"), expected, 4)


@pytest.mark.parametrize(
    "sort,count,key",
    [
        ("family", 7, "last_nm"),
        ("-birthdate", 9, "dob"),
        ("birthdate,-family", 11, "dob"),
    ],
)
def test_patient_sort_ties(client, raw_db, sort, count, key):
    """Many patients share a surname or a (junk) birth date; paging still sees each exactly once, in order."""
    pages = walk(client, f"/fhir/Patient?_sort={sort}&_count={count}")
    assert_paged_exactly_once(pages, sql_ids(raw_db, PATIENTS), count)
    descending = sort.startswith("-")
    values = [
        r[0] for r in raw_db.execute(f"SELECT {key} FROM pt_master WHERE del_flg <> 'Y' ORDER BY {key} {'DESC' if descending else 'ASC'}")
    ]
    seen = [e["resource"] for page in pages for e in page["entry"]]
    if key == "last_nm":
        assert [r["name"][0]["family"].upper() for r in seen] == values
    else:
        assert [r.get("birthDate", "").replace("-", "") or None for r in seen] == [v if v not in ("", "00000000") else None for v in values]


# --------------------------------------------------------------------------- previous and first links
@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Patient?_sort=family&_count=37",
        "/fhir/Patient?_sort=-birthdate,family&_count=50",
        "/fhir/Observation?category=vital-signs&date=ge2020-01-01&_sort=-date&_count=97",  # several branches: a UNION
        "/fhir/Observation?date=lt2012-01-01&_sort=date&_count=40",
    ],
)
def test_previous_links_walk_back_over_the_same_pages(client, path):
    """Keyset paging backwards: each ``previous`` page is the page the walk forward saw, ties
    and NULL sort keys included, and a page reached backwards continues forwards correctly."""
    pages = walk(client, path)
    assert len(pages) >= 3, "the search must span several pages to test anything"
    walk_back(client, pages)


def test_previous_cursor_cannot_be_replayed_on_another_search(client):
    second = walk(client, "/fhir/Patient?_sort=family&_count=5")[1]
    cursor = dict(parse_qsl(urlsplit(link(second, "previous")).query))["_cursor"]
    outcome = get_json(client, f"/fhir/Patient?_sort=-family&_count=5&_cursor={quote(cursor)}", 400)
    assert outcome["resourceType"] == "OperationOutcome"


def test_exact_multiple_of_count_has_no_extra_page(client, raw_db):
    guids = sql_ids(raw_db, f"{PATIENTS} ORDER BY pt_seq LIMIT 4")
    query = "/fhir/Patient?_id=" + ",".join(guids)
    one = walk(client, f"{query}&_count=4")
    assert len(one) == 1 and link(one[0], "next") is None and len(entry_ids(one[0])) == 4
    two = walk(client, f"{query}&_count=2")
    assert [len(entry_ids(p)) for p in two] == [2, 2]
    assert_paged_exactly_once(two, guids, 2)


# --------------------------------------------------------------------------- links and _count
def test_count_is_clamped_to_the_maximum(client, raw_db):
    bundle = get_json(client, "/fhir/Observation?_count=5000")
    assert ("_count", "1000") in query_params(link(bundle, "self"))
    assert len(bundle["entry"]) == 1000 and link(bundle, "next")
    assert ("_count", "1000") in query_params(link(bundle, "next"))
    patients = get_json(client, "/fhir/Patient?_count=5000")
    assert ("_count", "1000") in query_params(link(patients, "self"))
    assert len(patients["entry"]) == len(sql_ids(raw_db, PATIENTS)) and link(patients, "next") is None


def test_self_link_carries_the_applied_params(client, raw_db):
    bundle = get_json(client, "/fhir/Patient?family=smith&gender=female&unknown-param=x&_count=3&_sort=birthdate")
    self_params = query_params(link(bundle, "self"))
    assert ("family", "smith") in self_params and ("gender", "female") in self_params
    assert ("_sort", "birthdate") in self_params and ("_count", "3") in self_params
    assert "unknown-param" not in dict(self_params)  # ignored, and reported in an OperationOutcome entry
    assert any(e["search"]["mode"] == "outcome" for e in bundle["entry"])
    next_params = query_params(link(bundle, "next"))
    assert [p for p in next_params if p[0] != "_cursor"] == self_params
    expected = sql_ids(raw_db, f"{PATIENTS} AND last_nm LIKE 'SMITH%' AND sex_cd = 'F'")
    assert_paged_exactly_once(walk(client, link(bundle, "self")), expected, 3)
    # without _count the default page size is applied and shown
    assert ("_count", "20") in query_params(link(get_json(client, "/fhir/Patient"), "self"))


# --------------------------------------------------------------------------- cursors
def _first_next(client, path: str) -> str:
    url = link(get_json(client, path), "next")
    assert url
    return url


def test_cursor_from_another_search_is_rejected(client):
    cursor = cursor_of(_first_next(client, "/fhir/Patient?gender=male&_count=5"))
    for other in (
        "/fhir/Patient?gender=female&_count=5",
        "/fhir/Patient?gender=male&_sort=family&_count=5",
        "/fhir/Patient?_count=5",
        "/fhir/Observation?_count=5",
    ):
        outcome = get_json(client, f"{other}&_cursor={cursor}", status=400)
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    # the cursor is fine on its own search
    assert get_json(client, f"/fhir/Patient?gender=male&_count=5&_cursor={cursor}")["entry"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "%00",
        "eyJ",
        encode({"a": 1}),
        encode(["abc"]),
        encode("x"),
        encode([1, 2]),
        encode(["abcdef", [[1, 2]]]),
        encode(["abcdef", [None, 0, "x"]]),
    ],
)
def test_garbage_cursor_is_rejected(client, cursor):
    outcome = get_json(client, f"/fhir/Patient?_count=5&_cursor={quote(cursor, safe='%')}", status=400)
    assert outcome["resourceType"] == "OperationOutcome"


def test_tampered_cursor_is_rejected(client):
    """A cursor edited by a client (right fingerprint, wrong position) is a 400, never a 500."""
    fingerprint, position = decode(cursor_of(_first_next(client, "/fhir/Observation?category=laboratory&_count=5")))
    assert len(position) == 3  # date key, branch, id
    for bad in (
        position[:-1],
        position + ["x"],
        [position[0], "not-a-branch", position[2]],
        [position[0], 0.5, position[2]],
        [position[0], None, position[2]],
        [{"k": 1}, position[1], position[2]],
    ):
        token = encode([fingerprint, bad])
        response = client.get(f"/fhir/Observation?category=laboratory&_count=5&_cursor={token}")
        assert response.status_code == 400, (bad, response.status_code)
        assert response.get_json()["resourceType"] == "OperationOutcome"


# --------------------------------------------------------------------------- totals
def test_total_accurate_matches_sql_on_every_page(client, raw_db):
    expected = len(sql_ids(raw_db, f"{OBS} SELECT id FROM obs WHERE category = 'laboratory' AND dttm >= '20260101000000'"))
    pages = walk(client, "/fhir/Observation?category=laboratory&date=ge2026-01-01&_total=accurate&_count=400")
    assert len(pages) > 1
    assert all(page["total"] == expected for page in pages)
    assert sum(len(entry_ids(p)) for p in pages) == expected
    assert get_json(client, "/fhir/Patient?_total=accurate&_count=1")["total"] == len(sql_ids(raw_db, PATIENTS))
    # without _total, no total is claimed
    assert "total" not in get_json(client, "/fhir/Patient?_count=1")


@pytest.mark.parametrize("summary", ["_summary=count", "_count=0", "_summary=count&_count=7"])
def test_summary_count_gives_total_and_no_entries(client, raw_db, summary):
    bundle = get_json(client, f"/fhir/Observation?category=vital-signs&{summary}")
    assert bundle["total"] == len(sql_ids(raw_db, f"{OBS} SELECT id FROM obs WHERE category = 'vital-signs'")) > 0
    assert "entry" not in bundle and link(bundle, "next") is None
    patients = get_json(client, f"/fhir/Patient?gender=unknown&{summary}")
    assert patients["total"] == len(sql_ids(raw_db, f"{PATIENTS} AND (sex_cd IS NULL OR sex_cd NOT IN ('M', 'F'))")) > 0
    assert "entry" not in patients
