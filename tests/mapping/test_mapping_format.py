"""The mapping format's published JSON Schema: current, valid, and what editors check mappings with."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from facade.cli import main
from legacy_adapters.mapping.format import SCHEMA, schema_text

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "legacy_adapters" / "mapping" / "mapping.schema.json"
SHIPPED = sorted((ROOT / "legacy_adapters" / "sources").glob("*/mapping.yaml"))


def test_the_published_schema_is_current():
    assert PUBLISHED.read_text(encoding="utf-8") == schema_text(), (
        "run `fhir-facade mapping schema --out legacy_adapters/mapping/mapping.schema.json`"
    )
    run = CliRunner().invoke(main, ["mapping", "schema"])
    assert run.exit_code == 0 and json.loads(run.output) == SCHEMA


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(PUBLISHED.read_text(encoding="utf-8")))


@pytest.mark.parametrize("mapping", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_shipped_mappings_name_the_schema_and_pass_it(mapping):
    """Editors with a YAML language server read the first line and check the file as they type."""
    text = mapping.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../mapping/mapping.schema.json\n")
    assert (mapping.parent / "../../mapping/mapping.schema.json").resolve() == PUBLISHED
    validator = jsonschema.Draft202012Validator(json.loads(PUBLISHED.read_text(encoding="utf-8")))
    assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []


def test_an_editor_flags_what_the_engine_flags():
    """A misspelled key is an error for any JSON Schema validator, not only the engine's."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    document = yaml.safe_load(
        """
resources:
  Patient:
    sources:
      - table: pat
        id: "{p.guid}"
        joins: [{table: x, match: {p.a: x.a}, outter: true}]
        resource: {}
"""
    )
    messages = [e.message for e in validator.iter_errors(document)]
    assert any("'outter' was unexpected" in m for m in messages), messages
