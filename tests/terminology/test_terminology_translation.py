"""Forward and reverse translation through the demo crosswalks, checked against the CSV files and SQL.

Expected answers come from reading the shipped CSV files with the csv module and from SQL
written here, never from the terminology package.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from support.fhir_client import q, search_ids, search_resources

REPO = Path(__file__).resolve().parents[2]
DEMO_SET = REPO / "terminology" / "crosswalks" / "demo"
LOINC = "http://loinc.org"
LAB = "urn:fhir-facade:demo:lab-test"
UCUM = "http://unitsofmeasure.org"
APPLIED = {"equivalent", "equal", "wider", "subsumes"}
LAB_ROWS = """SELECT r.res_guid FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq
              WHERE COALESCE(r.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y'"""


def csv_rows(name: str) -> list[dict]:
    with (DEMO_SET / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def lab_crosswalk() -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """local code → [(LOINC, display)] applied, and local code → local display, from lab.csv."""
    forward, displays = defaultdict(list), {}
    for row in csv_rows("lab.csv"):
        displays[row["local_code"]] = row["local_display"]
        if row["equivalence"] in APPLIED:
            assert row["target_system"] == "LOINC"
            forward[row["local_code"]].append((row["target_code"], row["target_display"]))
    return forward, displays


def lab_ids(raw_db, where: str = "1=1", params: tuple = ()) -> set[str]:
    return {row[0] for row in raw_db.execute(f"{LAB_ROWS} AND ({where})", params)}


def test_lab_codes_carry_loinc_and_the_local_coding(client, raw_db):
    forward, displays = lab_crosswalk()
    stored = dict(raw_db.execute("SELECT res_guid, test_cd FROM lab_result"))
    resources = search_resources(client, "/fhir/Observation?category=laboratory&_count=1000&date=ge2025-06")
    assert len(resources) > 300
    seen_unmapped = 0
    for resource in resources:
        local = stored[resource["id"]]
        expected = [{"system": LOINC, "code": code, "display": display} for code, display in forward.get(local, [])]
        expected.append({"system": LAB, "code": local, "display": displays[local]})
        assert resource["code"]["coding"] == expected
        if local not in forward:  # never dropped, never invented: only the local coding and its text
            seen_unmapped += 1
            assert resource["code"]["text"] == displays[local]
    assert seen_unmapped > 0


def test_units_become_ucum_from_the_unit_table(client, raw_db):
    units = {row["legacy_unit"]: row["ucum_code"] for row in csv_rows("units.csv")}
    stored = dict(raw_db.execute("SELECT res_guid, result_units FROM lab_result"))
    resources = search_resources(client, "/fhir/Observation?category=laboratory&_count=1000&date=ge2025-09")
    checked = 0
    for resource in resources:
        quantity = resource.get("valueQuantity")
        if not quantity:
            continue
        legacy = stored[resource["id"]]
        if legacy is None:
            assert "unit" not in quantity and "code" not in quantity
        else:
            assert quantity["unit"] == legacy
            assert (quantity.get("system"), quantity.get("code")) == (UCUM, units[legacy])
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("local", ["GLU", "HGBA1C", "K", "LDL", "TSH"])
def test_a_loinc_search_finds_every_row_stored_under_a_local_code_mapped_to_it(client, raw_db, local):
    forward, _ = lab_crosswalk()
    loinc = forward[local][0][0]
    locals_for_loinc = [code for code, targets in forward.items() if loinc in (t[0] for t in targets)]
    marks = ",".join("?" * len(locals_for_loinc))
    expected = lab_ids(raw_db, f"r.test_cd IN ({marks})", tuple(locals_for_loinc))
    found = search_ids(client, f"/fhir/Observation?code={q(LOINC + '|' + loinc)}&_count=1000")
    assert len(found) == len(set(found)) and set(found) == expected and expected


def test_token_forms_on_a_translated_column(client, raw_db):
    forward, _ = lab_crosswalk()
    lab = "category=laboratory&_count=1000"
    # A bare code matches the local code or any standard code.
    assert set(search_ids(client, f"/fhir/Observation?{lab}&code=2345-7")) == lab_ids(raw_db, "r.test_cd = 'GLU'")
    assert set(search_ids(client, f"/fhir/Observation?{lab}&code=GLU")) == lab_ids(raw_db, "r.test_cd = 'GLU'")
    # The local system finds local codes, including unmapped ones.
    assert set(search_ids(client, f"/fhir/Observation?{lab}&code={q(LAB + '|UDS')}")) == lab_ids(raw_db, "r.test_cd = 'UDS'")
    # A standard system never matches a local code, and the local system never a LOINC code.
    assert search_ids(client, f"/fhir/Observation?code={q(LOINC + '|GLU')}") == []
    assert search_ids(client, f"/fhir/Observation?code={q(LAB + '|2345-7')}") == []
    # '|code' asks for a code without a system: the façade never emits one.
    assert search_ids(client, "/fhir/Observation?code=" + q("|GLU")) == []
    # 'loinc|' is any row that has a LOINC coding; ':not' keeps the rest (the unmapped codes).
    mapped = sorted(forward)
    marks = ",".join("?" * len(mapped))
    assert set(search_ids(client, f"/fhir/Observation?{lab}&code={q(LOINC + '|')}")) == lab_ids(
        raw_db, f"r.test_cd IN ({marks})", tuple(mapped)
    )
    assert set(search_ids(client, f"/fhir/Observation?{lab}&code:not={q(LOINC + '|')}")) == lab_ids(
        raw_db, f"r.test_cd NOT IN ({marks})", tuple(mapped)
    )
    assert set(search_ids(client, f"/fhir/Observation?{lab}&code:not={q(LOINC + '|2345-7')}")) == lab_ids(raw_db, "r.test_cd <> 'GLU'")
