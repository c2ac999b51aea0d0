"""The demo served from PostgreSQL and MariaDB beside the same data in SQLite: each engine's
answer must be byte for byte the SQLite one."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from legacy_adapters.sources.demo.generate import DEMO_SEED, generate
from support.pg_demo import PG_DEMO_PATIENTS, ensure_demo_schema

BASE = "http://testserver/fhir"
MARIADB_PATIENTS = 80
MARIADB_DATABASE = f"fhir_facade_test_demo_{os.getpid()}"  # per run: concurrent runs must not drop each other's


@pytest.fixture(scope="module")
def pg_demo_url(postgres_url) -> str:
    return ensure_demo_schema(postgres_url)


@pytest.fixture(scope="module")
def sqlite_demo(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("pg-compare") / "demo.sqlite")
    generate(path, patients=PG_DEMO_PATIENTS, seed=DEMO_SEED)
    return path


def _client(settings: Settings):
    app = create_app(settings)
    yield app.test_client()
    app.extensions["fhir_facade"].adapter.engine.dispose()


@pytest.fixture(scope="module")
def pg(pg_demo_url):
    yield from _client(Settings(auth_mode="off", database_url=pg_demo_url, base_url=BASE))


@pytest.fixture(scope="module")
def lite(sqlite_demo):
    yield from _client(Settings(auth_mode="off", demo_path=sqlite_demo, base_url=BASE))


@pytest.fixture(scope="module")
def clients(mariadb_url, tmp_path_factory):
    admin = sa.create_engine(mariadb_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {MARIADB_DATABASE}")
        connection.exec_driver_sql(f"CREATE DATABASE {MARIADB_DATABASE} CHARACTER SET utf8mb4")
    url = sa.engine.make_url(mariadb_url).set(database=MARIADB_DATABASE).render_as_string(hide_password=False)
    generate(url, patients=MARIADB_PATIENTS)
    sqlite_path = tmp_path_factory.mktemp("mariadb-parity") / "demo.sqlite"
    generate(str(sqlite_path), patients=MARIADB_PATIENTS)
    settings = {"base_url": "http://testserver/fhir"}
    yield (
        create_app(Settings(auth_mode="off", database_url=url, **settings)).test_client(),
        create_app(Settings(auth_mode="off", demo_path=str(sqlite_path), **settings)).test_client(),
    )
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {MARIADB_DATABASE}")
    admin.dispose()
