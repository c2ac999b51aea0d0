"""Legacy connections over the network: a read is one message, an idle connection is pinged
before use and replaced when dead, and autocommit sessions still refuse every write."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from legacy_adapters import engines
from legacy_adapters.engines import create_legacy_engine
from support.scratch_db import scratch_database

WRITES = (
    "INSERT INTO probe (id, label) VALUES (2, 'written')",
    "UPDATE probe SET label = 'changed'",
    "DELETE FROM probe",
    "CREATE TABLE probe_two (id INTEGER)",
    "DROP TABLE probe",
)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), pytest.param("mariadb", marks=pytest.mark.mariadb)])
def legacy(request, tmp_path):
    """(read-only legacy engine, read-write admin engine) over a scratch database with one row."""
    service = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
    with scratch_database(request.param, tmp_path, service, prefix="pool") as url:
        admin = sa.create_engine(url, poolclass=sa.NullPool)
        with admin.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE probe (id INTEGER PRIMARY KEY, label VARCHAR(20))")
            connection.exec_driver_sql("INSERT INTO probe (id, label) VALUES (1, 'original')")
        engine = create_legacy_engine(url)
        try:
            yield engine, admin, request.param
        finally:
            engine.dispose()
            admin.dispose()


def _backend_id(connection: sa.Connection, dialect: str) -> int:
    return connection.exec_driver_sql("SELECT pg_backend_pid()" if dialect == "postgresql" else "SELECT CONNECTION_ID()").scalar_one()


def _pings(engine: sa.Engine, monkeypatch) -> list[bool]:
    calls: list[bool] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection) -> bool:
        calls.append(True)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def test_a_connection_used_recently_is_not_pinged(legacy, monkeypatch):
    engine, _admin, _dialect = legacy
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT label FROM probe").scalar_one()
    pings = _pings(engine, monkeypatch)
    for _ in range(3):
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT label FROM probe").scalar_one() == "original"
    assert pings == []


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(legacy, monkeypatch):
    engine, admin, dialect = legacy
    with engine.connect() as connection:
        first = _backend_id(connection, dialect)
    pings = _pings(engine, monkeypatch)
    monkeypatch.setattr(engines, "PING_AFTER_IDLE", 0.0)  # every pooled connection counts as idle
    with engine.connect() as connection:
        assert _backend_id(connection, dialect) == first  # alive: pinged, kept
    assert len(pings) == 1
    with admin.connect() as connection:  # the server drops the idle connection
        connection.exec_driver_sql(f"SELECT pg_terminate_backend({first})" if dialect == "postgresql" else f"KILL {first}")
    with engine.connect() as connection:  # the ping fails: a new connection answers, no error
        assert _backend_id(connection, dialect) != first
        assert connection.exec_driver_sql("SELECT label FROM probe").scalar_one() == "original"


@pytest.mark.parametrize("write", WRITES)
def test_autocommit_sessions_still_refuse_writes(legacy, write):
    engine, admin, _dialect = legacy
    with engine.connect() as connection:
        with pytest.raises(sa.exc.DBAPIError) as refused:
            connection.exec_driver_sql(write)
    assert "read" in str(refused.value.orig).lower()  # read-only transaction / READ ONLY, not a missing table
    with admin.connect() as connection:
        assert connection.exec_driver_sql("SELECT id, label FROM probe").all() == [(1, "original")]
