"""Keyset paging over sort keys that are SQL NULL, on SQLite and on PostgreSQL.

Engines disagree on where NULL sorts (SQLite: first; PostgreSQL: last). The façade
defines NULL as the smallest value everywhere, so pages come out in the same order
on every engine, and a cursor that stops on a NULL key continues correctly.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from legacy_adapters.sources.demo.generate import generate
from support.fhir_client import search_resources, walk, walk_back
from support.pg_demo import with_search_path

PATIENTS = 60
SCHEMA = f"fhir_facade_null_sort_{os.getpid()}"  # per process: parallel runs and workers


def _null_some_birth_dates(engine: sa.Engine) -> None:
    with engine.begin() as connection:  # a test database: writable on purpose, unlike the façade's
        connection.execute(sa.text("UPDATE pt_master SET dob = NULL WHERE pt_seq % 4 = 0"))


def _expected(engine: sa.Engine, descending: bool) -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT pt_guid, dob FROM pt_master WHERE del_flg IS NULL OR del_flg <> 'Y'")).all()
    # NULL is the smallest key; ties (same dob or both NULL) are broken by id, ascending.
    ordered = sorted(rows, key=lambda row: row[0])
    ordered.sort(key=lambda row: (row[1] is not None, row[1] or ""), reverse=descending)
    return [guid for guid, _ in ordered]


@pytest.fixture(scope="module")
def sqlite_case(tmp_path_factory):
    path = tmp_path_factory.mktemp("nulls") / "demo.sqlite"
    generate(str(path), patients=PATIENTS)
    engine = sa.create_engine(f"sqlite:///{path}")
    _null_some_birth_dates(engine)
    yield create_app(Settings(auth_mode="off", demo_path=str(path), base_url="http://testserver/fhir")).test_client(), engine
    engine.dispose()


@pytest.fixture(scope="module")
def postgres_case(postgres_url):
    admin = sa.create_engine(postgres_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    url = with_search_path(postgres_url, SCHEMA)
    engine = sa.create_engine(url)
    generate(engine, patients=PATIENTS)
    _null_some_birth_dates(engine)
    yield create_app(Settings(auth_mode="off", database_url=url, base_url="http://testserver/fhir")).test_client(), engine
    engine.dispose()
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    admin.dispose()


@pytest.mark.parametrize("engine_case", ["sqlite_case", "postgres_case"])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("count", [4, 7])
def test_null_keys_sort_lowest_and_page_exactly_once(request, engine_case, descending, count):
    client, engine = request.getfixturevalue(engine_case)
    sort = "-birthdate" if descending else "birthdate"
    resources = search_resources(client, f"/fhir/Patient?_sort={sort}&_count={count}")
    ids = [r["id"] for r in resources]
    assert sum(1 for r in resources if "birthDate" not in r) >= PATIENTS // 4  # the NULLs are really there
    assert len(set(ids)) == len(ids)
    assert ids == _expected(engine, descending)
    walk_back(client, walk(client, f"/fhir/Patient?_sort={sort}&_count={count}"))
