"""The demo's formulary and problem codes through the shipped crosswalks (demo-med, demo-problem):
RxNorm, ICD-10-CM and SNOMED CT on output and in searches, the local coding kept.

Expected answers come from the CSV files (csv module) and SQL written here, never from the
terminology package.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from support.fhir_client import get_json, q, search_ids, search_resources

DEMO_SET = Path(__file__).resolve().parents[2] / "terminology" / "crosswalks" / "demo"
APPLIED = {"equivalent", "equal", "wider", "subsumes"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
MED = "urn:fhir-facade:demo:med"
PROBLEM = "urn:fhir-facade:demo:problem"
SYSTEMS = {"RXNORM": RXNORM, "ICD10": ICD10, "SNOMED-CT": SNOMED}

RX_ROWS = """SELECT x.rx_guid FROM rx_order x JOIN pt_master p ON p.pt_seq = x.pt_seq
             WHERE COALESCE(x.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y'"""
# Both Condition sources, each with its row filters; a code item is matched whole inside ';'.
CONDITION_ROWS = """SELECT q.prob_guid FROM prob_list q JOIN pt_master p ON p.pt_seq = q.pt_seq
                    WHERE COALESCE(q.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' AND ({where})
                    UNION ALL
                    SELECT dx.dx_guid FROM enc_dx dx JOIN pt_master p ON p.pt_seq = dx.pt_seq JOIN enc_visit e ON e.visit_no = dx.visit_no
                    WHERE COALESCE(dx.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' AND COALESCE(e.del_flg, 'N') <> 'Y'
                    AND ({where_dx})"""


def crosswalk(name: str) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """local code → applied standard codings (file order), and local code → local display."""
    forward, displays = defaultdict(list), {}
    with (DEMO_SET / name).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            displays[row["local_code"]] = row["local_display"]
            if row["equivalence"] in APPLIED:
                forward[row["local_code"]].append(
                    {"system": SYSTEMS[row["target_system"]], "code": row["target_code"], "display": row["target_display"]}
                )
    return forward, displays


def locals_for(forward: dict[str, list[dict]], system: str, code: str | None = None) -> list[str]:
    return sorted(local for local, targets in forward.items() if any(t["system"] == system and code in (None, t["code"]) for t in targets))


def condition_ids(raw_db, items: list[str]) -> set[str]:
    """Condition rows whose dx_codes hold one of the items (e.g. 'ICD10:I10') as a whole item."""
    if not items:
        return set()
    where = " OR ".join("instr(';' || {col} || ';', ?) > 0" for _ in items)
    sql = CONDITION_ROWS.format(where=where.format(col="q.dx_codes"), where_dx=where.format(col="dx.dx_codes"))
    params = tuple(f";{item};" for item in items) * 2
    return {row[0] for row in raw_db.execute(sql, params)}


def rx_ids(raw_db, meds: list[str]) -> set[str]:
    marks = ",".join("?" * len(meds)) or "NULL"
    return {row[0] for row in raw_db.execute(f"{RX_ROWS} AND x.med_cd IN ({marks})", tuple(meds))}


# --------------------------------------------------------------------------- Medication
def test_medications_carry_rxnorm_from_the_crosswalk_then_the_local_coding(client, raw_db):
    forward, displays = crosswalk("med.csv")
    stored = dict(raw_db.execute("SELECT med_cd, med_desc FROM med_cd"))
    resources = search_resources(client, "/fhir/Medication?_count=100")
    assert {r["id"] for r in resources} == set(stored)
    unmapped = 0
    for resource in resources:
        local = resource["id"]
        expected = [*forward.get(local, []), {"system": MED, "code": local, "display": displays[local]}]
        assert resource["code"]["coding"] == expected
        assert resource["code"]["text"] == stored[local]
        unmapped += local not in forward
    assert unmapped >= 2  # unmapped formulary codes survive with their local coding alone


@pytest.mark.parametrize("path", ["Medication", "MedicationRequest"])
def test_an_rxnorm_search_finds_the_rows_stored_under_mapped_formulary_codes(client, raw_db, path):
    forward, _ = crosswalk("med.csv")

    def found(token: str) -> set[str]:
        return set(search_ids(client, f"/fhir/{path}?code={q(token)}&_count=1000"))

    def expected(meds: list[str]) -> set[str]:
        return set(meds) if path == "Medication" else rx_ids(raw_db, meds)

    for local in ("100871", "103007"):
        rxnorm = forward[local][0]["code"]
        assert found(f"{RXNORM}|{rxnorm}") == expected(locals_for(forward, RXNORM, rxnorm)) != set()
        assert found(rxnorm) == expected([local])  # a bare code: local or any standard system
    assert found(f"{MED}|105118") == expected(["105118"]) != set()  # an unmapped local code
    assert found(f"{RXNORM}|100871") == set()  # a standard system never matches a local code
    assert found(f"{MED}|314076") == set()
    every = [row[0] for row in raw_db.execute("SELECT med_cd FROM med_cd")]
    mapped = locals_for(forward, RXNORM)
    assert found(f"{RXNORM}|") == expected(mapped)
    if path == "MedicationRequest":  # ':not' keeps unmapped drugs and prescriptions typed as text
        typed = {row[0] for row in raw_db.execute(f"{RX_ROWS} AND x.med_cd IS NULL")}
        assert set(search_ids(client, f"/fhir/MedicationRequest?code:not={q(RXNORM + '|')}&_count=1000")) == (
            rx_ids(raw_db, sorted(set(every) - set(mapped))) | typed
        )


# --------------------------------------------------------------------------- Condition
def test_local_problem_codes_gain_icd10_and_snomed_and_keep_the_local_coding(client, raw_db):
    forward, displays = crosswalk("problem.csv")
    rows = raw_db.execute(
        """SELECT q.prob_guid, q.dx_codes FROM prob_list q JOIN pt_master p ON p.pt_seq = q.pt_seq
           WHERE q.del_flg <> 'Y' AND p.del_flg <> 'Y' AND (q.dx_codes LIKE 'LOCAL:%' OR q.dx_codes = 'ICD10:E11.9') LIMIT 400"""
    ).fetchall()
    seen = set()
    for guid, codes in rows:
        coding = get_json(client, f"/fhir/Condition/{guid}")["code"]["coding"]
        prefix, _, code = codes.partition(":")
        if prefix == "LOCAL":
            assert coding == [*forward[code], {"system": PROBLEM, "code": code, "display": displays[code]}], codes
        else:  # standard codes the legacy stored itself pass through unchanged
            assert coding == [{"system": ICD10, "code": code}]
        seen.add(prefix)
    assert seen == {"LOCAL", "ICD10"}
    # CAD's ICD-10-CM row is 'narrower': published in ConceptMap, never stamped onto data.
    (cad,) = raw_db.execute("SELECT prob_guid FROM prob_list WHERE dx_codes = 'LOCAL:CAD' AND del_flg <> 'Y' LIMIT 1").fetchone()
    systems = [c["system"] for c in get_json(client, f"/fhir/Condition/{cad}")["code"]["coding"]]
    assert systems == [SNOMED, PROBLEM]


@pytest.mark.parametrize("system,code", [(ICD10, "I10"), (SNOMED, "38341003"), (ICD10, "E11.9"), (SNOMED, "53741008"), (ICD10, "I25.10")])
def test_a_standard_condition_search_finds_stored_and_locally_coded_rows(client, raw_db, system, code):
    forward, _ = crosswalk("problem.csv")
    prefix = {ICD10: "ICD10", SNOMED: "SNOMED-CT"}[system]
    items = [f"{prefix}:{code}"] + [f"LOCAL:{local}" for local in locals_for(forward, system, code)]
    expected = condition_ids(raw_db, items)
    found = search_ids(client, f"/fhir/Condition?code={q(system + '|' + code)}&_count=1000")
    assert len(found) == len(set(found)) and set(found) == expected
    assert any(i.startswith("LOCAL:") for i in items) == (code != "I25.10")  # I25.10 is only 'narrower' for CAD


def test_condition_token_forms_through_the_problem_crosswalk(client, raw_db):
    forward, _ = crosswalk("problem.csv")

    def found(token: str, modifier: str = "") -> set[str]:
        return set(search_ids(client, f"/fhir/Condition?code{modifier}={q(token)}&_count=1000"))

    assert found("HTN2") == found(f"{PROBLEM}|HTN2") == condition_ids(raw_db, ["LOCAL:HTN2"]) != set()
    assert found("I10") == condition_ids(raw_db, ["ICD10:I10", "LOCAL:HTN2"])
    assert found(f"{ICD10}|HTN2") == set() and found(f"{PROBLEM}|I10") == set()
    # 'icd-10-cm|' is any row with an ICD-10-CM code, stored or translated.
    locals_with_icd = [f"LOCAL:{c}" for c in locals_for(forward, ICD10)]
    rows = {
        row[0]: row[1]
        for row in raw_db.execute(
            CONDITION_ROWS.replace("SELECT q.prob_guid", "SELECT q.prob_guid, q.dx_codes")
            .replace("SELECT dx.dx_guid", "SELECT dx.dx_guid, dx.dx_codes")
            .format(where="1=1", where_dx="1=1")
        )
    }
    with_icd = {g for g, codes in rows.items() if codes and any(i.startswith("ICD10:") or i in locals_with_icd for i in codes.split(";"))}
    assert found(f"{ICD10}|") == with_icd
    assert found(f"{ICD10}|", ":not") == set(rows) - with_icd != set()
