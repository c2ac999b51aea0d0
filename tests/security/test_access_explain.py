"""``fhir-facade scopes explain``: what a scope string grants, from the enforcing code."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from facade.cli import main

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def _explain(monkeypatch, demo_path, *args) -> CliRunner:
    monkeypatch.setenv("FHIR_FACADE_DEMO_PATH", demo_path)
    return CliRunner().invoke(main, ["scopes", "explain", *args])


def test_explain_json_shows_interactions_filters_and_sql(monkeypatch, demo_path):
    result = _explain(
        monkeypatch,
        demo_path,
        f"launch/patient patient/Observation.rs?category={LAB} patient/Patient.r patient/X.dus",
        "--patient",
        "p-1",
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["malformed_scopes_granting_nothing"] == ["patient/X.dus"] and report["context_scopes"] == ["launch/patient"]
    observation = report["types"]["Observation"]
    assert observation["compartment"] == "patient"
    assert observation["search"]["filter"] == f"(patient=Patient/p-1) AND (category={LAB})"
    # The category filter keeps only the laboratory source: the vital-sign variants are pruned from the SQL.
    assert list(observation["search"]["sql"]) == ["lab_result"]
    assert "p.pt_guid = 'p-1'" in observation["search"]["sql"]["lab_result"]
    patient = report["types"]["Patient"]
    assert patient["read"]["allowed"] and not patient["search"]["allowed"] and patient["search"]["status"] == 403


def test_explain_text_names_refusals(monkeypatch, demo_path):
    result = _explain(monkeypatch, demo_path, "patient/Observation.rs")
    assert result.exit_code == 0, result.output
    assert "refused (400)" in result.output and "needs a patient context" in result.output
    assert "Patient  (patient compartment by '_id')" in result.output
