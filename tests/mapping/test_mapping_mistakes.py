"""Typical mapping mistakes: every one fails ``fhir-facade mapping check`` and server start-up
alike, with its ``file:line:column`` and what was expected. Each case edits one line of a small
valid mapping; the line edited is the line the error must name."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from facade.app import preflight
from facade.cli import main
from facade.config import Settings
from legacy_adapters.engines import sqlite_url
from legacy_adapters.mapping.errors import MappingError

SCHEMA = [
    "CREATE TABLE pat (id INTEGER PRIMARY KEY, guid TEXT, family TEXT, sex TEXT, dob TEXT, deleted TEXT)",
    "CREATE TABLE lab (id INTEGER PRIMARY KEY, pat_id INTEGER, code TEXT, value REAL, taken TEXT)",
    "CREATE TABLE vital (id INTEGER PRIMARY KEY, pat_id INTEGER, pulse REAL, taken TEXT)",
    "CREATE TABLE codes (code TEXT PRIMARY KEY, loinc TEXT, kind TEXT)",
    "INSERT INTO pat VALUES (1, 'p1', 'Smith', 'F', '19800131', 'N'), (2, 'p2', 'Jones', 'M', '19700101', 'N')",
    "INSERT INTO lab VALUES (1, 1, 'GLU', 5.4, '20240101'), (2, 2, 'XX', 1, '20240102')",
    "INSERT INTO vital VALUES (1, 1, 72, '20240101')",
    "INSERT INTO codes VALUES ('GLU', '2345-7', 'LAB'), ('XX', '1-8', 'OTHER')",
]

VALID = """\
mapping: mistakes
timezone: UTC
resources:
  Patient:
    search:
      family: {type: string}
    sources:
      - name: pat
        table: pat
        alias: p
        id: "{p.guid}"
        where:
          - {column: p.deleted, not_equals: "Y"}
        resource:
          active: true
          name:
            - family: {column: p.family}
          gender: {column: p.sex, map: {M: male, F: female}, otherwise: unknown}
          birthDate: {column: p.dob, date: "%Y%m%d", as: date}
        search:
          family: {column: p.family}
  Observation:
    search:
      patient: {type: reference, target: Patient}
      date: {type: date}
    sources:
      - name: lab
        table: lab
        alias: l
        joins:
          - {table: pat, alias: p, match: {l.pat_id: p.id}}
          - {table: codes, alias: c, match: {l.code: c.code}, outer: true}
        id: "lab-{l.id}"
        resource:
          status: final
          code: {coding: [{system: http://loinc.org, code: {column: c.loinc}}], text: {column: l.code}}
          subject: {reference: {template: "Patient/{p.guid}"}}
          effectiveDateTime: {column: l.taken, date: "%Y%m%d"}
          valueQuantity: {value: {column: l.value}}
        search:
          patient: {column: p.guid}
          date: {column: l.taken, date: "%Y%m%d"}
      - name: vital
        table: vital
        alias: v
        joins:
          - {table: pat, alias: p, match: {v.pat_id: p.id}}
        id: "{v.id}-${variant}"
        resource:
          status: final
          code: {coding: [{system: http://loinc.org, code: "${loinc}"}]}
          subject: {reference: {template: "Patient/{p.guid}"}}
          valueQuantity: {value: {column: "${column}"}}
        search:
          patient: {column: p.guid}
          date: {column: v.taken, date: "%Y%m%d"}
        variants:
          - {name: pulse, vars: {loinc: 8867-4, column: v.pulse}}
"""

# (case, text to replace, replacement, what the error says). The error must name the line of the edit.
MISTAKES = [
    ("misspelled column key", "- family: {column: p.family}", "- family: {colum: p.family}", "did you mean 'column'?"),
    (
        "outter join",
        "match: {l.code: c.code}, outer: true}",
        "match: {l.code: c.code}, outter: true}",
        "unknown key 'outter' in a join; did you mean 'outer'?",
    ),
    (
        "misspelled resource type",
        "  Observation:\n",
        "  Observaton:\n",
        "'Observaton' is not a FHIR R4 resource type; did you mean 'Observation'?",
    ),
    (
        "misspelled FHIR element",
        "birthDate: {column",
        "birthdate: {column",
        "Patient has no element 'birthdate' in FHIR R4; did you mean 'birthDate'?",
    ),
    ("undefined variable", 'code: "${loinc}"', 'code: "${lonic}"', "${lonic} is not defined by variant 'pulse'"),
    ("colliding integer ids", 'id: "lab-{l.id}"', 'id: "{l.id}-pulse"', "both make ids"),
    (
        "object where FHIR wants a list",
        "- family: {column: p.family}",
        "  family: {column: p.family}",
        "name is a list of HumanName in FHIR R4",
    ),
    (
        "unknown filter operator",
        'not_equals: "Y"}',
        'not_equal: "Y"}',
        "unknown key 'not_equal' in a row filter; did you mean 'not_equals'?",
    ),
    (
        "a code FHIR does not have",
        "map: {M: male, F: female}",
        "map: {M: mail, F: female}",
        "resource.gender is a code of a required binding in FHIR R4: 'mail' is not one of male, female, other, unknown; did you mean 'male'?",
    ),
    (
        "misspelled reference type",
        'template: "Patient/{p.guid}"}}\n          effective',
        'template: "Patinet/{p.guid}"}}\n          effective',
        "'Patinet' is not a FHIR R4 resource type",
    ),
    (
        "required element left out",
        "          status: final\n          code: {coding: [{system: http://loinc.org, code: {column",
        "          code: {coding: [{system: http://loinc.org, code: {column",
        "Observation needs 'status'",
    ),
    (
        "misspelled column name",
        "- family: {column: p.family}",
        "- family: {column: p.famly}",
        "column 'famly' not found in 'pat'; did you mean 'family'?",
    ),
    ("misspelled table", "table: lab\n", "table: labs\n", "table 'labs' does not exist"),
    (
        "unknown alias",
        "patient: {column: p.guid}\n          date: {column: l.taken",
        "patient: {column: q.guid}\n          date: {column: l.taken",
        "unknown table alias 'q'",
    ),
    ("key written twice", "          active: true\n", "          active: true\n          active: false\n", "written twice"),
    ("boolean written as text", "active: true", 'active: "yes"', "resource.active is a boolean in FHIR R4: 'yes' is not true or false"),
    ("date as dateTime in a date element", 'date: "%Y%m%d", as: date}', 'date: "%Y%m%d%H%M%S"}', "is a FHIR date: add `as: date`"),
    ("wrong case in an enumeration", "as: date}", "as: Date}", "did you mean 'date'?"),
    (
        "comma in a flow mapping",
        "family: {type: string}",
        "family: {type: string, description: Family, or last, name}",
        "a comma starts a new key",
    ),
    ("filter with two operators", 'not_equals: "Y"}', 'not_equals: "Y", equals: "N"}', "exactly one operator"),
    (
        "undeclared search parameter",
        "          family: {column: p.family}\n",
        "          famly: {column: p.family}\n",
        "binds search parameter 'famly', which is not declared",
    ),
    (
        "a hook that does not exist",
        "valueQuantity: {value: {column: l.value}}",
        "valueQuantity: {hook: quantity, columns: [l.value]}",
        "hook 'quantity' is not defined",
    ),
    ("a date binding on text without its format", 'date: {column: l.taken, date: "%Y%m%d"}', "date: {column: l.taken}", "give its format"),
    (
        "token binding keys on a string parameter",
        "          family: {column: p.family}\n",
        "          family: {column: p.family, system: http://x}\n",
        "'system' does not apply to a string parameter",
    ),
    ("reference parameter to a misspelled type", "target: Patient}", "target: Patinet}", "target 'Patinet' is not a FHIR R4 resource type"),
    ("not YAML", "    sources:\n      - name: pat", "    sources:\n\t- name: pat", "not valid YAML"),
]


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mistakes") / "legacy.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.exec_driver_sql(statement)
    engine.dispose()
    return path


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _check(mapping: Path, database: Path) -> tuple[int, str]:
    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", str(mapping), "--db", str(database)])
    return run.exit_code, run.output


def test_the_valid_mapping_passes_check_and_start_up(tmp_path, database):
    mapping = _write(tmp_path, VALID)
    code, output = _check(mapping, database)
    assert code == 0, output
    preflight(Settings(mapping=str(mapping), database_url=sqlite_url(database), auth_mode="off"))


@pytest.mark.parametrize(("case", "old", "new", "expected"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_fails_check_and_start_up_with_its_line(tmp_path, database, case, old, new, expected):
    assert VALID.count(old) == 1, f"{case}: the edit must be unambiguous"
    text = VALID.replace(old, new)
    differs = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    offset = VALID.index(old) + differs
    line = text.count("\n", 0, offset) + 1
    mapping = _write(tmp_path, text)

    code, output = _check(mapping, database)
    assert code == 1, output
    assert expected in output, output
    assert f"{mapping}:{line}:" in output, f"{case}: expected line {line}\n{output}"
    assert "Traceback" not in output

    with pytest.raises(MappingError) as raised:
        preflight(Settings(mapping=str(mapping), database_url=sqlite_url(database), auth_mode="off"))
    assert expected in str(raised.value) and f"{mapping}:{line}:" in str(raised.value)


def test_serve_stops_with_the_mapping_errors(tmp_path, database, monkeypatch):
    """`fhir-facade serve` runs the same checks before any worker starts, and says what is wrong."""
    import facade.gunicorn

    started = []
    monkeypatch.setattr(facade.gunicorn.FacadeServer, "run", lambda self: started.append(self))
    # serve() names the workers' metrics directory in the environment: undone after the test,
    # or every later in-process app would read metrics from there.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()
    mapping = _write(tmp_path, VALID.replace("birthDate: {column", "birthdate: {column"))
    env = {"FHIR_FACADE_MAPPING": str(mapping), "FHIR_FACADE_DATABASE_URL": sqlite_url(database), "FHIR_FACADE_AUTH_MODE": "off"}
    run = CliRunner().invoke(main, ["serve"], env=env)
    assert run.exit_code == 1 and not started
    assert "the mapping cannot be served" in run.output and f"{mapping}:19:" in run.output and "did you mean 'birthDate'?" in run.output
    run = CliRunner().invoke(main, ["serve"], env={**env, "FHIR_FACADE_MAPPING": str(_write(tmp_path, VALID))})
    assert run.exit_code == 0 and len(started) == 1, run.output


def test_all_problems_are_reported_at_once(tmp_path, database):
    text = VALID.replace("birthDate: {column", "birthdate: {column").replace("outer: true}", "outter: true}")
    code, output = _check(_write(tmp_path, text), database)
    assert code == 1 and "'birthdate'" in output and "'outter'" in output


def test_a_where_inside_a_join_is_part_of_the_join(tmp_path, database):
    """`where:` in a join is not ignored: it is part of the join condition, so an outer join keeps
    its source row and drops only the joined values that do not qualify."""
    from facade.search.parser import parse_search
    from legacy_adapters.engines import create_legacy_engine
    from legacy_adapters.mapping.loader import load_mapping
    from legacy_adapters.sql_adapter import SqlAdapter

    text = VALID.replace(
        "match: {l.code: c.code}, outer: true}", "match: {l.code: c.code}, outer: true, where: [{column: c.kind, equals: LAB}]}"
    )
    adapter = SqlAdapter(load_mapping(_write(tmp_path, text)), create_legacy_engine(sqlite_url(database)))
    page = adapter.search(parse_search("Observation", [("_id", "lab-1,lab-2")], adapter.search_params("Observation")))
    codes = {r["id"]: r["code"].get("coding") for r in page.resources}
    assert codes == {"lab-1": [{"system": "http://loinc.org", "code": "2345-7"}], "lab-2": None}
    inner = text.replace("outer: true, where", "where")
    adapter = SqlAdapter(load_mapping(_write(tmp_path, inner)), create_legacy_engine(sqlite_url(database)))
    page = adapter.search(parse_search("Observation", [("_id", "lab-1,lab-2")], adapter.search_params("Observation")))
    assert [r["id"] for r in page.resources] == ["lab-1"]  # an inner join with the condition drops the row


def test_a_mapping_keeps_one_small_mark_per_place():
    """A loaded mapping lives as long as the process: each place it was written is one slotted
    mark, shared by the node and its entry in its parent (they were four dict-backed copies)."""
    from legacy_adapters.mapping import yamlpos

    doc = yamlpos.load("resources:\n  Patient:\n    id: {column: pt_guid}\n    names: [a, b]\n", "m.yaml")
    patient = doc["resources"]["Patient"]
    assert str(patient["id"].mark) == "m.yaml:3:9" and str(patient.key_marks["id"]) == "m.yaml:3:5"
    assert patient.value_marks["id"] is patient["id"].mark  # the same object, not an equal copy
    assert patient["names"].item_marks[1] is patient["names"][1].mark
    assert patient.mark is patient.key_marks["id"]  # a block mapping starts where its first key does
    assert not hasattr(patient.mark, "__dict__")
