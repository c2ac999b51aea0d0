"""When the legacy database is unreachable the façade answers 503 at once, and recovers by itself.

A TCP proxy between the façade and PostgreSQL stands in for the network: stopping
it drops every live connection and refuses new ones, as a database restart or a
network cut would. No fixed sleeps: every wait polls against a deadline.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable

import orjson
import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import DEMO_MAPPING, Settings
from facade.errors import FacadeError, UpstreamUnavailable
from legacy_adapters.engines import legacy_errors, sqlite_url
from legacy_adapters.mapping.loader import load_mapping
from legacy_adapters.sources.demo.generate import generate
from legacy_adapters.sql_adapter import SqlAdapter
from support.pg_demo import ensure_demo_schema
from support.tcp_proxy import TcpProxy

BASE = "http://testserver/fhir"
SEARCH = "/fhir/Observation?code=http://loinc.org|2345-7&_count=5"
FAST = 10.0  # seconds: an unavailable database must never make a request hang longer
RECOVERY = 10.0  # seconds allowed for the façade to notice the database is back


def _poll(attempt: Callable[[], bool], deadline: float) -> int:
    """Call ``attempt`` until it returns True; return how many calls it took."""
    end = time.monotonic() + deadline
    calls = 0
    while True:
        calls += 1
        if attempt():
            return calls
        if time.monotonic() > end:
            raise AssertionError(f"no success after {calls} attempts in {deadline} s")
        time.sleep(0.05)


def _timed_get(client, url: str):
    started = time.monotonic()
    response = client.get(url)
    return response, time.monotonic() - started


def _assert_unavailable(response, elapsed: float) -> None:
    assert response.status_code == 503, response.data
    assert elapsed < FAST, f"took {elapsed:.1f} s"
    assert response.content_type.startswith("application/fhir+json")
    body = orjson.loads(response.data)
    assert body["resourceType"] == "OperationOutcome"
    assert [issue["code"] for issue in body["issue"]] == ["transient"]
    assert int(response.headers["Retry-After"]) > 0


def _dispose(app) -> None:
    app.extensions["fhir_facade"].adapter.engine.dispose()


# -- PostgreSQL behind a proxy that can be cut -----------------------------------------------


@pytest.fixture(scope="module")
def pg_demo_url(postgres_url) -> str:
    return ensure_demo_schema(postgres_url)


@pytest.fixture()
def proxy(pg_demo_url):
    url = sa.engine.make_url(pg_demo_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    proxy.stop()


def _through(proxy: TcpProxy, pg_demo_url: str) -> str:
    url = sa.engine.make_url(pg_demo_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def expected(pg_demo_url) -> bytes:
    """The answer to SEARCH straight from PostgreSQL, no proxy in between."""
    app = create_app(Settings(auth_mode="off", database_url=pg_demo_url, base_url=BASE))
    try:
        response = app.test_client().get(SEARCH)
        assert response.status_code == 200
        return response.data
    finally:
        _dispose(app)


@pytest.mark.postgres
def test_outage_gives_503_then_recovers_without_restart(proxy, pg_demo_url, expected):
    proxy.start()
    app = create_app(Settings(auth_mode="off", database_url=_through(proxy, pg_demo_url), base_url=BASE))
    client = app.test_client()
    try:
        response = client.get(SEARCH)
        assert response.status_code == 200
        assert response.data == expected
        patient = orjson.loads(response.data)["entry"][0]["resource"]["subject"]["reference"]
        assert client.get(f"/fhir/{patient}").status_code == 200

        proxy.stop()  # the database "goes away": pooled connections die, new ones are refused
        for url in (SEARCH, f"/fhir/{patient}", SEARCH):
            _assert_unavailable(*_timed_get(client, url))
        assert client.get("/fhir/metadata").status_code == 200  # needs no database

        proxy.start()  # back, on the same address
        assert proxy.port == sa.engine.make_url(_through(proxy, pg_demo_url)).port
        recovered: list = []

        def answers() -> bool:
            response = client.get(SEARCH)
            recovered.append(response)
            return response.status_code == 200

        _poll(answers, RECOVERY)
        assert all(r.status_code == 503 for r in recovered[:-1])  # nothing in between but 503s
        assert recovered[-1].data == expected
        assert client.get(f"/fhir/{patient}").status_code == 200
    finally:
        _dispose(app)


# -- a partition: packets dropped, sockets left open ------------------------------------------

BOUND = 8.0  # seconds: statement_timeout 1 + network_timeout 1, a reconnect (libpq waits at least 2 s), slack


@pytest.mark.postgres
def test_a_partitioned_postgres_is_503_within_the_configured_time(proxy, pg_demo_url, expected):
    proxy.start()
    settings = Settings(auth_mode="off", database_url=_through(proxy, pg_demo_url), base_url=BASE, statement_timeout=1, network_timeout=1)
    app = create_app(settings)
    client = app.test_client()
    try:
        assert client.get(SEARCH).data == expected  # a pooled connection, alive
        proxy.blackhole()
        for _ in range(2):  # the pooled connection's pre-ping, then a new connection that is never answered
            response, elapsed = _timed_get(client, SEARCH)
            assert response.status_code == 503 and elapsed < BOUND, (response.status_code, elapsed)
            _assert_unavailable(response, 0)
    finally:
        proxy.stop()
        _dispose(app)


def _cut_in_bounded_time(engine: sa.Engine, proxy: TcpProxy) -> None:
    """A statement on a connection whose packets stop is an outage within a few seconds."""
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable), legacy_errors():
            connection.execute(sa.text("SELECT 2"))
        assert time.monotonic() - started < 4


@pytest.mark.postgres
def test_a_statement_on_a_partitioned_postgres_connection_is_cut(proxy, pg_demo_url):
    from legacy_adapters.engines import create_legacy_engine

    proxy.start()
    engine = create_legacy_engine(_through(proxy, pg_demo_url), statement_timeout_ms=1000, network_timeout=1)
    try:
        _cut_in_bounded_time(engine, proxy)
    finally:
        proxy.stop()
        engine.dispose()


@pytest.mark.postgres
def test_a_partitioned_postgres_state_database_fails_in_bounded_time(proxy, postgres_url):
    from facade.state import StateStore

    proxy.start()
    url = sa.engine.make_url(postgres_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    store = StateStore(url, statement_timeout=1, network_timeout=1)
    try:
        with store.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar() == 1
            proxy.blackhole()
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError) as failure:
                connection.execute(sa.text("SELECT 2"))
            assert time.monotonic() - started < 4
            assert failure.value.connection_invalidated  # the pool drops it; the next checkout reconnects
    finally:
        proxy.stop()
        store.dispose()


@pytest.mark.mariadb
def test_a_partitioned_mariadb_is_an_outage_within_the_configured_time(mariadb_url):
    from legacy_adapters.engines import create_legacy_engine

    url = sa.engine.make_url(mariadb_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 3306).start()
    engine = create_legacy_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), statement_timeout_ms=1000, network_timeout=1
    )
    try:
        _cut_in_bounded_time(engine, proxy)
    finally:
        proxy.stop()
        engine.dispose()


@pytest.mark.postgres
def test_repeated_outages(proxy, pg_demo_url, expected):
    """Pre-ping and pool invalidation keep working after more than one cut."""
    proxy.start()
    app = create_app(Settings(auth_mode="off", database_url=_through(proxy, pg_demo_url), base_url=BASE))
    client = app.test_client()
    try:
        for _ in range(3):
            _poll(lambda: client.get(SEARCH).status_code == 200, RECOVERY)
            proxy.stop()
            _assert_unavailable(*_timed_get(client, SEARCH))
            proxy.start()
        _poll(lambda: client.get(SEARCH).data == expected, RECOVERY)
    finally:
        _dispose(app)


@pytest.mark.postgres
def test_starts_while_database_is_down_and_binds_once_it_is_up(proxy, pg_demo_url, expected):
    proxy.start()
    proxy.stop()  # a known port with nothing listening: the database is down
    app = create_app(Settings(auth_mode="off", database_url=_through(proxy, pg_demo_url), base_url=BASE))
    client = app.test_client()
    try:
        metadata = client.get("/fhir/metadata")
        assert metadata.status_code == 200
        assert orjson.loads(metadata.data)["resourceType"] == "CapabilityStatement"
        for url in (SEARCH, "/fhir/Patient?name=smith", "/fhir/Patient/some-id"):
            _assert_unavailable(*_timed_get(client, url))
        assert app.extensions["fhir_facade"].adapter._bound is None  # a failed binding is not kept

        proxy.start()
        _poll(lambda: client.get(SEARCH).status_code == 200, RECOVERY)
        assert client.get(SEARCH).data == expected
        assert client.get("/fhir/Patient?name=smith").status_code == 200
    finally:
        _dispose(app)


@pytest.mark.postgres
def test_schema_drift_on_postgres_is_a_500_without_sql(postgres_url, caplog):
    """A statement error (here: a column renamed under a bound mapping) is not an outage."""
    schema = f"fhir_facade_drift_test_{os.getpid()}"
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    url = sa.engine.make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    writer = sa.create_engine(url, poolclass=sa.NullPool)
    app = None
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        generate(writer, patients=5)
        app = create_app(Settings(auth_mode="off", database_url=url.render_as_string(hide_password=False), base_url=BASE))
        client = app.test_client()
        assert client.get("/fhir/Patient?name=a").status_code == 200
        with writer.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE pt_master RENAME COLUMN last_nm TO last_name")
        with caplog.at_level(logging.DEBUG):
            response = client.get("/fhir/Patient?name=a")
        assert response.status_code == 500
        assert "Retry-After" not in response.headers
        body = orjson.loads(response.data)
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "exception"
        for leak in ("SELECT", "last_nm", "pt_master", "psycopg2", "UndefinedColumn"):
            assert leak not in response.get_data(as_text=True)
        assert not any("SELECT" in r.getMessage() or "last_nm" in r.getMessage() for r in caplog.records)
    finally:
        if app is not None:
            _dispose(app)
        writer.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


# -- Unit level: which driver failures mean "unavailable" -------------------------------------

SQL = "SELECT p.pt_guid, p.last_nm FROM pt_master AS p WHERE p.mrn = %(mrn_1)s"
PARAMS = {"mrn_1": "MRN-SECRET-123"}

UNAVAILABLE = {
    "pool timeout": sa.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached, connection timed out, timeout 30.00"),
    "operational": sa.exc.OperationalError(SQL, PARAMS, Exception("server closed the connection unexpectedly")),
    "connect refused": sa.exc.OperationalError(None, None, Exception('connection to server at "127.0.0.1", port 5432 failed')),
    "interface": sa.exc.InterfaceError(SQL, PARAMS, Exception("connection already closed")),
    "disconnection": sa.exc.DisconnectionError("ping failed"),
}
NOT_UNAVAILABLE = {
    "programming": sa.exc.ProgrammingError(SQL, PARAMS, Exception("column p.last_nm does not exist")),
    "data": sa.exc.DataError(SQL, PARAMS, Exception('invalid input syntax for type integer: "MRN-SECRET-123"')),
    "integrity": sa.exc.IntegrityError(SQL, PARAMS, Exception("duplicate key")),
    "internal": sa.exc.InternalError(SQL, PARAMS, Exception("cannot execute INSERT in a read-only transaction")),
}


def _leaks(text: str) -> list[str]:
    return [s for s in ("SELECT", "pt_master", "last_nm", "MRN-SECRET-123", "%(mrn_1)s") if s in text]


@pytest.mark.parametrize("name", sorted(UNAVAILABLE))
def test_connection_failures_map_to_503(name, caplog):
    with pytest.raises(UpstreamUnavailable) as caught, caplog.at_level(logging.DEBUG), legacy_errors():
        raise UNAVAILABLE[name]
    assert caught.value.status == 503 and caught.value.to_outcome()["issue"][0]["code"] == "transient"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not _leaks(str(caught.value.to_outcome()))
    assert not _leaks(" ".join(r.getMessage() for r in caplog.records))


@pytest.mark.parametrize("name", sorted(NOT_UNAVAILABLE))
def test_statement_failures_map_to_500(name, caplog):
    with pytest.raises(FacadeError) as caught, caplog.at_level(logging.DEBUG), legacy_errors():
        raise NOT_UNAVAILABLE[name]
    assert not isinstance(caught.value, UpstreamUnavailable)
    assert caught.value.status == 500 and caught.value.to_outcome()["issue"][0]["code"] == "exception"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not _leaks(str(caught.value.to_outcome()))
    assert not _leaks(" ".join(r.getMessage() for r in caplog.records))


class _FailingAdapter(SqlAdapter):
    """The demo adapter, except that every search fails with ``error`` inside the driver boundary."""

    error: Exception

    def search(self, request):
        with legacy_errors():
            raise self.error


@pytest.mark.parametrize("name", sorted(UNAVAILABLE) + sorted(NOT_UNAVAILABLE))
def test_driver_failures_over_http(name, demo_path):
    adapter = _FailingAdapter(load_mapping(DEMO_MAPPING), sa.create_engine(sqlite_url(demo_path)))
    adapter.error = UNAVAILABLE.get(name) or NOT_UNAVAILABLE[name]
    app = create_app(Settings(auth_mode="off", demo_path=demo_path, base_url=BASE), adapter=adapter)
    try:
        response = app.test_client().get("/fhir/Patient?identifier=MRN-SECRET-123")
        body = orjson.loads(response.data)
        assert body["resourceType"] == "OperationOutcome"
        assert not _leaks(response.get_data(as_text=True))
        if name in UNAVAILABLE:
            assert response.status_code == 503 and body["issue"][0]["code"] == "transient"
            assert int(response.headers["Retry-After"]) > 0
        else:
            assert response.status_code == 500 and body["issue"][0]["code"] == "exception"
            assert "Retry-After" not in response.headers
    finally:
        adapter.engine.dispose()


def test_exhausted_pool_gives_503_not_a_hang(demo_path):
    """A real pool timeout: the only connection is busy, the next request gives up and says 503."""
    engine = sa.create_engine(sqlite_url(demo_path), pool_size=1, max_overflow=0, pool_timeout=0.2)
    app = create_app(Settings(auth_mode="off", demo_path=demo_path, base_url=BASE), adapter=SqlAdapter(load_mapping(DEMO_MAPPING), engine))
    client = app.test_client()
    try:
        assert client.get("/fhir/Patient?name=smith").status_code == 200  # binds the mapping
        with engine.connect():  # holds the pool's only connection
            _assert_unavailable(*_timed_get(client, "/fhir/Patient?name=smith"))
        assert client.get("/fhir/Patient?name=smith").status_code == 200
    finally:
        engine.dispose()


def test_schema_drift_on_sqlite_is_a_500(tmp_path, demo_path):
    path = tmp_path / "drift.sqlite"
    shutil.copyfile(demo_path, path)
    app = create_app(Settings(auth_mode="off", demo_path=str(path), base_url=BASE))
    client = app.test_client()
    try:
        assert client.get("/fhir/Patient?name=smith").status_code == 200
        connection = sqlite3.connect(path)
        try:
            connection.execute("ALTER TABLE pt_master RENAME COLUMN last_nm TO last_name")
            connection.commit()
        finally:
            connection.close()
        assert client.get("/fhir/Patient?name=smith").status_code == 500
    finally:
        _dispose(app)
