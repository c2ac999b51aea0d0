"""`fhir-facade mapping check`: schema problems all at once, and legacy rows reconciled with resources built."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner

from facade.cli import main

DEMO_MAPPING = Path(__file__).resolve().parents[2] / "legacy_adapters" / "sources" / "demo" / "mapping.yaml"


def run_check(mapping: Path, db: str) -> tuple[int, dict]:
    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", str(mapping), "--db", db, "--json"])
    return run.exit_code, orjson.loads(run.output)


def demo_mapping(tmp_path, change) -> Path:
    document = yaml.safe_load(DEMO_MAPPING.read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def lab_source(document: dict) -> dict:
    return document["resources"]["Observation"]["sources"][0]


def test_the_demo_mapping_checks_out_and_reconciles_with_sql(demo_path, raw_db):
    code, report = run_check(DEMO_MAPPING, demo_path)
    assert code == 0 and report["ok"]
    assert not [i for i in report["issues"] if i["severity"] == "error"]
    # Unindexed search columns are warnings, not errors.
    assert any("'r.res_status' leads no index" in i["message"] for i in report["issues"] if i["severity"] == "warning")
    lab = next(r for r in report["reconciliation"] if r["source"] == "lab_result")
    legacy, kept = raw_db.execute(
        """SELECT COUNT(*), SUM(CASE WHEN COALESCE(r.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' THEN 1 ELSE 0 END)
           FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq"""
    ).fetchone()
    assert (lab["legacy_rows"], lab["excluded_by_filters"], lab["resources"]) == (legacy, legacy - kept, kept)
    bp = next(r for r in report["reconciliation"] if r["variant"] == "bp")
    expected = raw_db.execute(
        """SELECT COUNT(*) FROM vitals v JOIN pt_master p ON p.pt_seq = v.pt_seq WHERE COALESCE(v.del_flg, 'N') <> 'Y'
           AND COALESCE(p.del_flg, 'N') <> 'Y' AND v.bp_sys IS NOT NULL AND v.bp_dia IS NOT NULL"""
    ).fetchone()[0]
    assert bp["resources"] == expected


def test_every_missing_table_and_column_is_reported(tmp_path, demo_path):
    def break_it(document):
        lab_source(document)["resource"]["note"] = [{"text": {"column": "r.remark_txt"}}]
        lab_source(document)["joins"][1]["table"] = "lab_test_code"
        document["resources"]["Patient"]["sources"][0]["search"]["family"]["column"] = "p.surname"
        # A collection's name is an alias of its own table; a variant's own filters are checked too.
        report_source = document["resources"]["DiagnosticReport"]["sources"][0]
        report_source["collections"]["results"]["where"][0]["column"] = "results.deleted"
        vitals = document["resources"]["Observation"]["sources"][1]
        vitals["variants"][0]["where"] = [{"column": "v.pulse_qual", "not_equals": "X"}]

    code, report = run_check(demo_mapping(tmp_path, break_it), demo_path)
    assert code == 1 and not report["ok"]
    errors = [i["message"] for i in report["issues"] if i["severity"] == "error"]
    wheres = [i["where"] for i in report["issues"] if i["severity"] == "error"]
    assert any("'r.remark_txt'" in e for e in errors)
    assert any("'lab_test_code' does not exist" in e for e in errors)
    assert any("'p.surname'" in e for e in errors)
    assert any("'results.deleted': column 'deleted' not found in 'lab_result'" in e for e in errors)
    assert any("'v.pulse_qual'" in e and "variant" in w for e, w in zip(errors, wheres))
    assert not any("unknown table alias" in e for e in errors)
    assert report["reconciliation"] == []  # nothing is built from a mapping that does not fit


def test_rows_that_fail_to_map_are_grouped_by_reason_with_examples(tmp_path, demo_path, raw_db):
    def break_it(document):
        # The hook takes two columns; given one, it raises for every row.
        lab_source(document)["resource"]["valueQuantity"] = {"hook": "lab_quantity", "columns": ["r.result_val"]}
        lab_source(document)["id"] = "{r.test_cd}"  # many rows per lab code: duplicate ids

    code, report = run_check(demo_mapping(tmp_path, break_it), demo_path)
    assert code == 1
    lab = next(r for r in report["reconciliation"] if r["source"] == "lab_result")
    reasons = {f["reason"].split(":")[0]: f for f in lab["failures"]}
    assert reasons["cannot build"]["rows"] == lab["legacy_rows"] - lab["excluded_by_filters"]
    assert 0 < len(reasons["cannot build"]["examples"]) <= 5
    duplicates = reasons["duplicate id"]
    codes = dict(
        raw_db.execute(
            """SELECT r.test_cd, COUNT(*) FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq
           WHERE COALESCE(r.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y' GROUP BY r.test_cd HAVING COUNT(*) > 1"""
        )
    )
    assert duplicates["rows"] == sum(codes.values())
    assert set(duplicates["examples"]) <= set(codes)


def test_table_output_and_unreachable_database(tmp_path, demo_path):
    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", str(DEMO_MAPPING), "--db", demo_path])
    assert run.exit_code == 0 and "legacy rows" in run.output and run.output.rstrip().endswith("OK")
    missing = CliRunner().invoke(main, ["mapping", "check", "--mapping", str(DEMO_MAPPING), "--db", str(tmp_path / "nothing.sqlite")])
    assert missing.exit_code == 1 and "Traceback" not in missing.output and "Error" in missing.output


@pytest.mark.parametrize("flag", ["--json", None])
def test_a_broken_mapping_file_is_a_clear_error(tmp_path, demo_path, flag):
    bad = tmp_path / "bad.yaml"
    bad.write_text("resources: {Patient: {}}\n", encoding="utf-8")
    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", str(bad), "--db", demo_path] + ([flag] if flag else []))
    assert run.exit_code == 1 and "a resource type needs 'sources'" in run.output and "bad.yaml:1:22" in run.output
    if flag == "--json":  # the same issues as the table, as data
        [issue] = orjson.loads(run.output)["issues"]
        assert issue["at"].endswith("bad.yaml:1:22") and issue["where"] == "resources.Patient"


@pytest.mark.postgres
def test_postgres_gives_the_same_check_and_coverage_as_sqlite(postgres_url, tmp_path):
    from legacy_adapters.sources.demo.generate import DEMO_SEED, generate
    from support.pg_demo import PG_DEMO_PATIENTS, ensure_demo_schema

    pg_url = ensure_demo_schema(postgres_url)
    lite = str(tmp_path / "demo.sqlite")
    generate(lite, patients=PG_DEMO_PATIENTS, seed=DEMO_SEED)
    pg_code, pg_report = run_check(DEMO_MAPPING, pg_url)
    lite_code, lite_report = run_check(DEMO_MAPPING, lite)
    assert pg_code == lite_code == 0
    assert pg_report["reconciliation"] == lite_report["reconciliation"]
    coverage = [
        CliRunner().invoke(main, ["terminology", "coverage", "--db", db, "--mapping", str(DEMO_MAPPING), "--json"]) for db in (pg_url, lite)
    ]
    assert all(run.exit_code == 0 for run in coverage)
    assert orjson.loads(coverage[0].output) == orjson.loads(coverage[1].output)
