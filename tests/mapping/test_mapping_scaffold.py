"""`fhir-facade mapping scaffold`: a draft mapping from a legacy schema that loads, checks, and
guesses what a vendor would write first."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from facade.cli import main
from legacy_adapters.mapping.loader import load_mapping
from support.omop_fixture import load as load_omop


def _draft(tmp_path, db: str):
    run = CliRunner().invoke(main, ["mapping", "scaffold", "--db", db, "--out", str(tmp_path / "draft.yaml")])
    assert run.exit_code == 0, run.output
    path = tmp_path / "draft.yaml"
    return path, yaml.safe_load(path.read_text(encoding="utf-8")), path.read_text(encoding="utf-8")


def _checks(path, db: str) -> None:
    load_mapping(path)  # the static compiler accepts it
    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", str(path), "--db", db])
    assert run.exit_code == 0 and run.output.rstrip().endswith("OK"), run.output


def test_a_draft_of_the_demo_schema(tmp_path, demo_path):
    path, draft, text = _draft(tmp_path, demo_path)
    _checks(path, demo_path)
    patient = draft["resources"]["Patient"]["sources"][0]
    assert patient["table"] == "pt_master" and patient["id"] == "{pm.pt_guid}"
    assert patient["resource"]["birthDate"] == {"column": "pm.dob", "date": "%Y%m%d", "as": "date"}  # the format, from the values
    assert patient["resource"]["name"] == [{"family": {"column": "pm.last_nm"}, "given": [{"column": "pm.first_nm"}]}]
    labs = next(s for s in draft["resources"]["Observation"]["sources"] if s["table"] == "lab_result")
    assert labs["joins"] == [{"table": "pt_master", "alias": "p", "match": {"lr.pt_seq": "p.pt_seq"}}]  # the patient, by its key
    assert labs["resource"]["subject"] == {"reference": {"template": "Patient/{p.pt_guid}"}}
    assert labs["resource"]["effectiveDateTime"] == {"column": "lr.collect_dttm", "date": "%Y%m%d%H%M%S"}
    assert labs["search"]["code"] == {
        "codings": [{"column": "lr.test_cd", "lookup": "lab-test-cd"}, {"column": "lr.test_cd", "lookup": "lab-test-cd-loinc"}]
    }
    assert draft["code_tables"]["lab-test-cd-loinc"] == {
        "table": "lab_test_cd",
        "key": "test_cd",
        "code": "loinc_cd",
        "system": "http://loinc.org",
    }
    procedures = draft["resources"]["Procedure"]["sources"][0]
    assert procedures["resource"]["performedDateTime"]["date"] == "%Y%m%d%H%M"  # twelve digits: minutes, not seconds
    assert "TODO soft deletes? where: [{column: lr.del_flg" in text
    assert "CREATE INDEX ix_proc_log_proc_cd ON proc_log (proc_cd);" in text  # searched, and no index leads with it
    assert "CREATE INDEX ix_lab_result" not in text.replace("ix_lab_result_", "")  # lab_result's searched columns are indexed
    assert text.startswith("# yaml-language-server: $schema=file://")


def test_a_draft_of_the_omop_schema(tmp_path):
    db = str(tmp_path / "omop.sqlite")
    load_omop("sqlite", f"sqlite:///{db}")
    path, draft, text = _draft(tmp_path, db)
    _checks(path, db)
    concept = draft["code_tables"]["concept"]
    assert (concept["key"], concept["code"], concept["display"]) == ("concept_id", "concept_code", "concept_name")
    assert concept["system"]["column"] == "vocabulary_id"
    assert (
        concept["system"]["map"]["LOINC"] == "http://loinc.org"
        and concept["system"]["map"]["ICD10CM"] == "http://hl7.org/fhir/sid/icd-10-cm"
    )
    person = draft["resources"]["Patient"]["sources"][0]
    assert person["resource"]["birthDate"] == {"parts": {"year": "p.year_of_birth", "month": "p.month_of_birth", "day": "p.day_of_birth"}}
    measurement = next(s for s in draft["resources"]["Observation"]["sources"] if s["table"] == "measurement")
    assert measurement["id"] == "measurement-{m.measurement_id}"  # two Observation sources: a prefix each
    assert measurement["resource"]["code"] == {"coding": [{"column": "m.measurement_concept_id", "lookup": "concept"}]}
    assert measurement["resource"]["effectiveDateTime"] == {
        "first": [{"column": "m.measurement_datetime", "as": "dateTime"}, {"column": "m.measurement_date", "as": "date"}]
    }
    assert measurement["resource"]["subject"] == {"reference": {"template": "Patient/{m.person_id}"}}  # the key is the id: no join
    assert "Tables without rows, not drafted:" in text and "note_nlp" in text


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    run = CliRunner().invoke(main, ["mapping", "scaffold", "--db", str(tmp_path / "nothing.sqlite")])
    assert run.exit_code == 1 and "Traceback" not in run.output and "Error" in run.output


@pytest.mark.parametrize("tables", [["pt_master", "lab_result", "lab_test_cd"]])
def test_a_draft_of_some_tables(tmp_path, demo_path, tables):
    run = CliRunner().invoke(main, ["mapping", "scaffold", "--db", demo_path, *[f"--table={t}" for t in tables]])
    draft = yaml.safe_load(run.output)
    assert set(draft["resources"]) == {"Patient", "Observation"} and set(draft["code_tables"]) == {"lab-test-cd", "lab-test-cd-loinc"}
