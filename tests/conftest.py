"""Shared fixtures: the demo legacy database, the app on it, and the real database services.

PostgreSQL and MariaDB tests run for real when the services answer. On a
developer machine without them they skip, saying why; in CI (CI=true) a skip
would hide a regression, so it fails instead.
"""

from __future__ import annotations

import os
import sqlite3

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from legacy_adapters.sources.demo.generate import generate

DEMO_PATIENTS = 1000
POSTGRES_URL = os.environ.get("FHIR_FACADE_TEST_POSTGRES", "postgresql+psycopg2://root@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("FHIR_FACADE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory) -> str:
    """The default-size demo database, generated once per test session (under a second)."""
    path = str(tmp_path_factory.mktemp("demo") / "demo.sqlite")
    generate(path, patients=DEMO_PATIENTS)
    return path


@pytest.fixture(scope="session")
def settings(demo_path) -> Settings:
    return Settings(demo_path=demo_path, base_url="http://testserver/fhir")


@pytest.fixture(scope="session")
def app(settings):
    return create_app(settings)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def raw_db(demo_path):
    """A plain sqlite3 connection for checking answers with hand-written SQL."""
    connection = sqlite3.connect(f"file:{demo_path}?mode=ro", uri=True)
    yield connection
    connection.close()


def _service_url(url: str, name: str) -> str:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "service not reachable"
        reason = f"{name} is not reachable at {sa.engine.make_url(url).render_as_string(hide_password=True)}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: database tests must run, not skip)")
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _service_url(POSTGRES_URL, "PostgreSQL")


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    return _service_url(MARIADB_URL, "MariaDB")
