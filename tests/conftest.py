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
from support.openemr_fixture import MAPPING as OPENEMR_MAPPING
from support.openemr_fixture import drop as drop_openemr
from support.openemr_fixture import load as load_openemr
from support.openemr_fixture import openemr_ddl_path

DEMO_PATIENTS = 1000


_DATA_HOME: str | None = None


def pytest_configure(config) -> None:
    # Apps built with default settings keep their state database (audit, revocations) in a
    # throw-away data directory, never in the developer's own; it goes when the run ends.
    import tempfile

    # Under pytest-xdist each worker inherits the controller's directory and takes one of its own
    # inside it: two workers never share a state database (the controller removes the lot).
    global _DATA_HOME
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and os.environ.get("FHIR_FACADE_TEST_DATA_HOME"):
        os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix=f"{worker}-", dir=os.environ["FHIR_FACADE_TEST_DATA_HOME"])
    elif "XDG_DATA_HOME" not in os.environ:
        _DATA_HOME = os.environ["XDG_DATA_HOME"] = os.environ["FHIR_FACADE_TEST_DATA_HOME"] = tempfile.mkdtemp(
            prefix="fhir-facade-test-data-"
        )


# Test files that put the machine under load (the benchmark harness, workers killed under load).
UNDER_LOAD = ("tests/contract/test_bench.py", "tests/security/test_audit_under_load.py", "tests/bulk/test_bench_bulk.py")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent with -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (pyproject.toml's addopts): a test file is one unit of work, so its module
    fixtures (demo databases, servers, a benchmark run) are built once, by one worker, and its tests
    run in their written order. The files under load share one unit: they never run beside each other."""
    from xdist.scheduler import LoadScopeScheduling

    if config.getoption("dist") != "loadfile":
        return None

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "under load" if path in UNDER_LOAD else path

    return FileScheduling(config, log)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Leave nothing behind: the data directory, and the PostgreSQL demo schema of this run."""
    import shutil

    from support.pg_demo import drop_demo_schemas

    try:
        drop_demo_schemas()
    except Exception as error:
        print(f"could not drop the PostgreSQL demo schema: {type(error).__name__}")
    if _DATA_HOME is not None:
        shutil.rmtree(_DATA_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _metrics_directory_is_not_inherited():
    """`fhir-facade serve` run in-process (CliRunner) names its workers' metrics directory in this
    process's environment. Undone after each test: otherwise every later app, and every server a
    later test starts with this environment, would keep its metrics there, whatever the test order."""
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    yield
    if before is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = before


POSTGRES_URL = os.environ.get("FHIR_FACADE_TEST_POSTGRES", "postgresql+psycopg2://root@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("FHIR_FACADE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory) -> str:
    """The default-size demo database, generated once per test session (under a second)."""
    path = str(tmp_path_factory.mktemp("demo") / "demo.sqlite")
    generate(path, patients=DEMO_PATIENTS)
    return path


@pytest.fixture(scope="session")
def state_url(tmp_path_factory) -> str:
    """The façade's own state database (revocations, audit) for this test session."""
    return "sqlite:///" + str(tmp_path_factory.mktemp("state") / "state.sqlite")


@pytest.fixture(scope="session")
def settings(demo_path, state_url) -> Settings:
    # Access control off: these fixtures test FHIR behaviour; tests/test_access_*.py use real tokens.
    return Settings(demo_path=demo_path, base_url="http://testserver/fhir", auth_mode="off", state_url=state_url)


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
    except Exception as exc:
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


@pytest.fixture(scope="module")
def openemr(request):
    """OpenEMR's schema subset in MariaDB with the fixture rows (support/openemr_fixture.py): its URL
    and an engine. One database per test module and process: concurrent runs must not drop each
    other's."""
    ddl = openemr_ddl_path()
    if ddl is None:
        pytest.skip("OpenEMR DDL not found: needs <repo>/../shared/reference/openemr/openemr_subset.sql or /work/shared")
    admin_url = request.getfixturevalue("mariadb_url")  # skips locally, fails under CI=true, when MariaDB is down
    database = f"fhir_facade_{request.module.__name__.rsplit('.', 1)[-1]}_{os.getpid()}"
    url = load_openemr(admin_url, database, ddl)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    yield url, engine
    engine.dispose()
    drop_openemr(admin_url, database)


@pytest.fixture(scope="module")
def openemr_client(openemr):
    """The façade over that database with the shipped OpenEMR mapping, access control off."""
    app = create_app(Settings(auth_mode="off", database_url=openemr[0], mapping=OPENEMR_MAPPING, base_url="http://testserver/fhir"))
    yield app.test_client()
    app.extensions["fhir_facade"].adapter.engine.dispose()
