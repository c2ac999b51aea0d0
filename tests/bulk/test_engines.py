"""The same export from PostgreSQL and MariaDB as from SQLite, line for line; and ``[bulk]
database_url`` makes exports read another database (a replica) than the API."""

from __future__ import annotations

import pytest

from facade.config import Settings
from legacy_adapters.engines import sqlite_url
from legacy_adapters.sources.demo.generate import DEMO_SEED, generate
from support.bulk_client import run_export
from support.mariadb_demo import mariadb_demo
from support.pg_demo import PG_DEMO_PATIENTS, ensure_demo_schema

PAIRS = [
    ("_type", "Patient,Observation,Condition,Encounter,MedicationRequest,Practitioner"),
    ("_typeFilter", "Observation?category=laboratory"),
    ("_typeFilter", "Observation?category=vital-signs"),
]
BASE = "http://testserver/fhir"


def _settings(tmp_path, **values) -> Settings:
    return Settings(
        auth_mode="off", base_url=BASE, state_url=f"sqlite:///{tmp_path}/state.sqlite", bulk_dir=str(tmp_path / "bulk"), **values
    )


def _same(engine_lines: dict[str, list[bytes]], sqlite_lines: dict[str, list[bytes]]) -> None:
    assert set(engine_lines) == set(sqlite_lines)
    for resource_type, lines in sqlite_lines.items():
        assert len(lines) > 0
        assert sorted(engine_lines[resource_type]) == sorted(lines), resource_type


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_engines_export_the_same_ndjson_as_sqlite(engine, request, tmp_path):
    if engine == "postgresql":
        url = ensure_demo_schema(request.getfixturevalue("postgres_url"))
        patients = PG_DEMO_PATIENTS
        sqlite_path = str(tmp_path / "demo.sqlite")
        generate(sqlite_path, patients=patients, seed=DEMO_SEED)
        _same(
            run_export(_settings(tmp_path / "pg", database_url=url), PAIRS),
            run_export(_settings(tmp_path / "lite", demo_path=sqlite_path), PAIRS),
        )
        return
    with mariadb_demo(request.getfixturevalue("mariadb_url"), "fhir_facade_bulk", 40) as url:
        sqlite_path = str(tmp_path / "demo.sqlite")
        generate(sqlite_path, patients=40)
        _same(
            run_export(_settings(tmp_path / "maria", database_url=url), PAIRS),
            run_export(_settings(tmp_path / "lite", demo_path=sqlite_path), PAIRS),
        )


def test_exports_read_the_bulk_database(tmp_path, bulk_demo):
    """The API serves a 15-patient database; exports read the 40-patient one named in [bulk]."""
    primary = str(tmp_path / "primary.sqlite")
    generate(primary, patients=15)
    lines = run_export(_settings(tmp_path, demo_path=primary, bulk_database_url=sqlite_url(bulk_demo)), [("_type", "Patient")])
    direct = run_export(_settings(tmp_path / "direct", demo_path=bulk_demo), [("_type", "Patient")])
    assert sorted(lines["Patient"]) == sorted(direct["Patient"]) and len(lines["Patient"]) > 15
