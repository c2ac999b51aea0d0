"""The SQL each search parameter type compiles to, per dialect, held in golden files.

A change to a binding, the compiler or a dialect's rendering shows up here as a readable diff
of the statement, not only as a behaviour change somewhere else. After a deliberate change,
rewrite the files with ``FHIR_FACADE_UPDATE_GOLDEN=1 pytest tests/sql/test_golden_sql.py`` and
review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from facade.search.cursor import resume
from facade.search.parser import parse_search

GOLDEN = Path(__file__).resolve().parent / "golden"
DIALECTS = ("sqlite", "postgresql", "mariadb")
CASES = {
    "token_system_code": ("Observation", "code=http://loinc.org|2345-7"),
    "token_code_only": ("Observation", "code=2345-7"),
    "token_not": ("Observation", "category:not=laboratory"),
    "token_missing": ("Condition", "clinical-status:missing=true"),
    "token_code_string": ("Condition", "code=http://hl7.org/fhir/sid/icd-10-cm|E11.9"),
    "string_starts": ("Patient", "name=smi"),
    "string_exact": ("Patient", "family:exact=Smith"),
    "string_contains": ("Patient", "family:contains=mit"),
    "date_eq_day": ("Patient", "birthdate=1961-02-03"),
    "date_range": ("Observation", "date=ge2024-01-01&date=lt2024-07-01"),
    "date_period": ("Encounter", "date=ge2025-01-01"),
    "reference": ("Observation", "patient=Patient/abc"),
    "reference_missing": ("Observation", "encounter:missing=true"),
    "reference_collection": ("DiagnosticReport", "result=Observation/abc"),
    "id_list": ("Patient", "_id=a,b,c"),
    "sorted_page": ("Observation", "patient=abc&_sort=-date&_count=5"),
}


@pytest.fixture(scope="module")
def adapters(app, request):
    """The demo mapping bound on each engine (binding reads the live tables, and some choices,
    such as index-friendly ranges for byte-ordered text, depend on the engine)."""
    from facade.config import DEMO_MAPPING
    from legacy_adapters.engines import create_legacy_engine
    from legacy_adapters.mapping.loader import load_mapping
    from legacy_adapters.sql_adapter import SqlAdapter
    from support.mariadb_demo import mariadb_demo
    from support.pg_demo import ensure_demo_schema

    found = {"sqlite": app.extensions["fhir_facade"].adapter}
    pg = SqlAdapter(load_mapping(DEMO_MAPPING), create_legacy_engine(ensure_demo_schema(request.getfixturevalue("postgres_url"))))
    found["postgresql"] = pg
    with mariadb_demo(request.getfixturevalue("mariadb_url"), "fhir_facade_test_golden", patients=5) as url:
        found["mariadb"] = SqlAdapter(load_mapping(DEMO_MAPPING), create_legacy_engine(url))
        for adapter in found.values():
            adapter.bound()
        yield found
        found["mariadb"].engine.dispose()
    pg.engine.dispose()


def _statement(adapter, resource_type: str, query: str) -> sa.Select:
    from urllib.parse import parse_qsl

    from legacy_adapters.mapping.compiler import compile_page

    catalogues = {t: adapter.search_params(t) for t in adapter.resource_types()}
    request = resume(parse_search(resource_type, parse_qsl(query), catalogues[resource_type], catalogues=catalogues))
    query_plan = compile_page(adapter.bound()[resource_type], request, request.count + 1)
    assert query_plan.statement is not None
    return query_plan.statement


def _render(statement: sa.Select, dialect: sa.Dialect) -> str:
    compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return str(compiled).strip() + "\n"


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_parameter_type_compiles_to_its_golden_sql(adapters, case, dialect):
    resource_type, query = CASES[case]
    adapter = adapters[dialect]
    sql = _render(_statement(adapter, resource_type, query), adapter.engine.dialect)
    golden = GOLDEN / f"{case}.{dialect}.sql"
    if os.environ.get("FHIR_FACADE_UPDATE_GOLDEN") == "1":
        golden.write_text(sql, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with FHIR_FACADE_UPDATE_GOLDEN=1 and review it"
    assert sql == golden.read_text(encoding="utf-8")
