"""`fhir-facade terminology coverage`: figures match counts computed directly in SQL."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
from click.testing import CliRunner

from facade.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO_MAPPING = REPO / "legacy_adapters" / "sources" / "demo" / "mapping.yaml"
MAPPED = {
    r["local_code"]
    for r in csv.DictReader((REPO / "terminology" / "crosswalks" / "demo" / "lab.csv").read_text(encoding="utf-8").splitlines())
    if r["equivalence"] == "equivalent"
}


def test_coverage_matches_sql(demo_path, raw_db):
    run = CliRunner().invoke(main, ["terminology", "coverage", "--db", demo_path, "--mapping", str(DEMO_MAPPING), "--json"])
    assert run.exit_code == 0, run.output
    report = orjson.loads(run.output)
    lab = next(item for item in report if item["resource"] == "Observation" and item["column"] == "r.test_cd")
    counts = list(
        raw_db.execute(
            """SELECT r.test_cd, COUNT(*) FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq
           WHERE COALESCE(r.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' AND COALESCE(r.test_cd, '') <> ''
           GROUP BY r.test_cd ORDER BY COUNT(*) DESC, r.test_cd"""
        )
    )
    assert [(c["code"], c["rows"]) for c in lab["codes"]] == counts
    assert {c["code"] for c in lab["codes"] if c["status"] == "mapped"} == MAPPED & {code for code, _ in counts}
    assert {c["status"] for c in lab["codes"] if c["code"] in ("UDS", "XMISC")} == {"unmatched"}
    total = sum(n for _, n in counts)
    mapped = sum(n for code, n in counts if code in MAPPED)
    assert (lab["rows"], lab["rows_mapped"]) == (total, mapped)
    assert lab["percent"] == round(100.0 * mapped / total, 1) and 90 < lab["percent"] < 100


def test_coverage_of_code_strings_counts_their_local_items(demo_path, raw_db):
    run = CliRunner().invoke(main, ["terminology", "coverage", "--db", demo_path, "--mapping", str(DEMO_MAPPING), "--json"])
    problems = next(item for item in orjson.loads(run.output) if item["column"] == "q.dx_codes")
    live = """FROM prob_list q JOIN pt_master p ON p.pt_seq = q.pt_seq
              WHERE COALESCE(q.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y'"""
    # The demo stores one local item per string ('LOCAL:HTN2'); ICD-10/SNOMED-only rows have no local code.
    counts = list(
        raw_db.execute(f"""SELECT substr(q.dx_codes, 7), COUNT(*) {live} AND q.dx_codes LIKE 'LOCAL:%'
                                    GROUP BY q.dx_codes ORDER BY COUNT(*) DESC, substr(q.dx_codes, 7)""")
    )
    assert counts and [(c["code"], c["rows"]) for c in problems["codes"]] == counts
    assert {c["status"] for c in problems["codes"]} == {"mapped"}  # every demo problem code has a standard target
    (total,) = raw_db.execute(f"SELECT COUNT(*) {live}").fetchone()
    local = sum(n for _, n in counts)
    assert (problems["rows"], problems["rows_mapped"], problems["rows_without_code"]) == (local, local, total - local)


def test_coverage_table_for_people(demo_path):
    run = CliRunner().invoke(main, ["terminology", "coverage", "--db", demo_path, "--mapping", str(DEMO_MAPPING), "--top", "3"])
    assert run.exit_code == 0, run.output
    assert "Observation.code.coding" in run.output and "% of" in run.output and "more (--top" in run.output


def test_coverage_reports_a_broken_mapping_without_a_traceback(tmp_path, demo_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("resources: {}\nterminology: {crosswalks: [missing.yaml]}\n", encoding="utf-8")
    run = CliRunner().invoke(main, ["terminology", "coverage", "--db", demo_path, "--mapping", str(bad)])
    assert run.exit_code != 0 and "missing.yaml" in run.output and "Traceback" not in run.output
