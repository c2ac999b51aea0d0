"""The façade never writes to the system of record.

Every engine from ``create_legacy_engine`` refuses writes at the database
itself (SQLite ``mode=ro`` + ``query_only``, PostgreSQL
``default_transaction_read_only``, MariaDB ``SET SESSION TRANSACTION READ ONLY``),
and search values shaped like SQL injection reach the database only as bound
parameters: they answer 200 or 400, never 500, and leave the data unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, quote

import orjson
import psycopg2.errors
import pymysql
import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from legacy_adapters.engines import create_legacy_engine, sqlite_url
from support.pg_demo import ensure_demo_schema, forget_demo_schema, table_digest

BASE = "http://testserver/fhir"

# Statements that would change the data or the schema if they ran.
WRITES = {
    "insert": "INSERT INTO lab_test_cd (test_cd, test_desc) VALUES ('ZZRO', 'READ ONLY PROBE')",
    "update": "UPDATE pt_master SET last_nm = 'CHANGED' WHERE pt_seq = 2",
    "delete": "DELETE FROM vitals WHERE pt_seq = 2",
    "create": "CREATE TABLE ro_probe (id INTEGER)",
    "create_index": "CREATE INDEX ix_ro_probe ON pt_master (remarks)",
    "alter": "ALTER TABLE pt_master ADD COLUMN ro_probe INTEGER",
    "drop": "DROP TABLE lab_result",
}

# (path and query, statuses a correct server may give). 200s must not match everything.
INJECTIONS = [
    "Patient?family=' OR '1'='1",
    "Patient?name=x'; DROP TABLE pt_master; --",
    "Patient?name=x'); DELETE FROM pt_master; --",
    "Patient?given=%25",  # a LIKE wildcard must match literally
    "Patient?name=_",
    "Patient?name=%5C",  # a lone backslash
    "Patient?_id=x' OR 'x'='x",
    "Patient?_id=1; UPDATE pt_master SET last_nm = 'X'",
    "Patient?identifier=' OR 1=1 --",
    "Patient?identifier=urn:fhir-facade:demo:mrn|' UNION SELECT pt_guid FROM pt_master --",
    "Patient?gender=male' OR 'a'='a",
    "Patient?birthdate=1950'; DROP TABLE pt_master; --",
    "Patient?birthdate=lt1950) OR (1=1",
    "Patient?_sort=family; DROP TABLE pt_master",
    "Patient?_sort=(SELECT 1)",
    "Patient?_count=1; DROP TABLE pt_master",
    "Patient?_count=1 OR 1=1",
    "Patient?name:exact=' OR ''='",
    "Patient?name:contains=%25' OR '1'='1",
    "Observation?code=http://loinc.org|2345-7' OR '1'='1",
    "Observation?code=' OR 1=1 --|2345-7",
    "Observation?patient=x' OR 'a'='a",
    "Observation?subject=Patient/x' OR 'a'='a",
    "Observation?patient=Patient/1;DELETE FROM lab_result",
    "Observation?date=ge2020-01-01' OR '1'='1",
    "Observation?category=laboratory' --",
]


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _refused(engine: sa.Engine, sql: str, error: type[Exception]) -> Exception:
    """The driver error ``sql`` fails with. Never committed: should the write get through
    (a regression), it is rolled back, so the shared demo data stays intact for other tests."""
    with engine.connect() as conn:
        try:
            with pytest.raises(error) as caught:
                conn.exec_driver_sql(sql)
        finally:
            conn.rollback()
    return caught.value


def _assert_refused_by_sqlite(engine: sa.Engine, sql: str) -> None:
    failure = _refused(engine, sql, sa.exc.OperationalError)
    assert isinstance(failure.orig, sqlite3.OperationalError)
    assert "readonly database" in str(failure.orig)


def _assert_refused_by_postgres(engine: sa.Engine, sql: str) -> None:
    failure = _refused(engine, sql, sa.exc.InternalError)
    assert isinstance(failure.orig, psycopg2.errors.ReadOnlySqlTransaction)
    assert failure.orig.pgcode == "25006"


# -- SQLite ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_engine(demo_path):
    engine = create_legacy_engine(sqlite_url(demo_path))
    yield engine
    engine.dispose()


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_sqlite_engine_refuses_writes(sqlite_engine, demo_path, kind):
    before = _sha256(demo_path)
    _assert_refused_by_sqlite(sqlite_engine, WRITES[kind])
    assert _sha256(demo_path) == before


def test_sqlite_read_only_holds_even_with_query_only_off(sqlite_engine):
    """``query_only`` is a per-connection pragma; ``mode=ro`` is the layer that cannot be switched off."""
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA query_only").scalar() == 1
        conn.exec_driver_sql("PRAGMA query_only = OFF")
        with pytest.raises(sa.exc.OperationalError, match="readonly database"):
            conn.exec_driver_sql(WRITES["update"])
        conn.invalidate()  # don't hand the altered connection back to the pool


def test_sqlite_engine_must_be_opened_read_only(demo_path):
    for url in (f"sqlite:///{demo_path}", sqlite_url(demo_path, read_only=False)):
        with pytest.raises(ValueError, match="read-only"):
            create_legacy_engine(url)


def test_sqlite_engine_still_reads(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pt_master").scalar() == 1000


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_demo_url(postgres_url):
    url = ensure_demo_schema(postgres_url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    before = table_digest(engine)
    yield url
    try:
        if table_digest(engine) != before:  # a write got through: don't let later runs reuse this data
            forget_demo_schema(postgres_url)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def pg_engine(pg_demo_url):
    engine = create_legacy_engine(pg_demo_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def pg_digest(pg_demo_url):
    """Fingerprint of the PostgreSQL demo tables, read through a plain engine."""
    engine = sa.create_engine(pg_demo_url, poolclass=sa.NullPool)
    yield lambda: table_digest(engine)
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", sorted(WRITES))
def test_postgres_engine_refuses_writes(pg_engine, pg_digest, kind):
    before = pg_digest()
    _assert_refused_by_postgres(pg_engine, WRITES[kind])
    assert pg_digest() == before


@pytest.mark.postgres
def test_postgres_url_options_cannot_turn_read_only_off(pg_demo_url, pg_digest):
    url = sa.engine.make_url(pg_demo_url)
    url = url.update_query_dict({"options": url.query["options"] + " -c default_transaction_read_only=off"})
    engine = create_legacy_engine(url.render_as_string(hide_password=False))
    try:
        before = pg_digest()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
            assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
        _assert_refused_by_postgres(engine, WRITES["delete"])
        assert pg_digest() == before
    finally:
        engine.dispose()


# -- The façade over HTTP, on both backends ---------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, demo_path):
    """(client, fingerprint of the legacy data) for the façade on each backend."""
    if request.param == "sqlite":
        app = create_app(Settings(auth_mode="off", demo_path=demo_path, base_url=BASE))
        engine = sa.create_engine(sqlite_url(demo_path))

        def fingerprint():
            return _sha256(demo_path), table_digest(engine)
    else:
        url = request.getfixturevalue("pg_demo_url")
        app = create_app(Settings(auth_mode="off", database_url=url, base_url=BASE))
        engine = sa.create_engine(url, poolclass=sa.NullPool)

        def fingerprint():
            return table_digest(engine)

    yield app.test_client(), fingerprint
    app.extensions["fhir_facade"].adapter.engine.dispose()
    engine.dispose()


def _search(client, query: str):
    response = client.get(f"/fhir/{query}")
    body = orjson.loads(response.data)
    assert response.status_code in (200, 400), (query, response.status_code, body)
    if response.status_code == 200:
        assert body["resourceType"] == "Bundle", query
    else:
        assert body["resourceType"] == "OperationOutcome", query
        # No SQL, table names or driver messages in the answer, beyond the client's own value echoed back.
        text = orjson.dumps(body).decode()
        for value in sorted((v for _, v in parse_qsl(query.partition("?")[2])), key=len, reverse=True):
            text = text.replace(value, "")
        for leak in ("select", "pt_master", "lab_result", "[sql", "psycopg", "sqlite", "pymysql", "traceback"):
            assert leak not in text.lower(), body
    return response.status_code, body


def test_injection_shaped_values_change_nothing(backend):
    client, fingerprint = backend
    before = fingerprint()
    total_before = _search(client, "Patient?_summary=count")[1]["total"]
    for query in INJECTIONS:
        status, body = _search(client, query)
        if status == 200:
            assert body.get("entry", []) == [], f"{query} matched {len(body['entry'])} resources"
    # the same via POST _search, where values arrive form-encoded
    for query in INJECTIONS:
        path, _, params = query.partition("?")
        response = client.post(f"/fhir/{path}/_search", data=params.replace("+", "%2B"), content_type="application/x-www-form-urlencoded")
        assert response.status_code in (200, 400), (query, response.status_code)
    # reads: the id is parsed against the mapping's id template, then bound
    for resource_id in ("x' OR '1'='1", "1; DROP TABLE pt_master", "' UNION SELECT pt_guid FROM pt_master --", "%25", "_"):
        for resource_type in ("Patient", "Observation"):
            response = client.get(f"/fhir/{resource_type}/{quote(resource_id, safe='')}")
            assert response.status_code in (400, 404), (resource_type, resource_id, response.status_code)
    assert fingerprint() == before
    assert _search(client, "Patient?_summary=count")[1]["total"] == total_before
    assert _search(client, "Patient?name=smith")[1]["entry"]  # and the data still answers
    assert _search(client, "Patient?family=O'CONNOR")[1]["entry"]  # a quote in a value is data, not SQL


def test_forged_cursor_changes_nothing(backend):
    client, fingerprint = backend
    before = fingerprint()
    status, page = _search(client, "Patient?_count=2&_sort=family")
    assert status == 200
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    token = next_url.split("_cursor=", 1)[1]
    decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    forged_values = ["' OR '1'='1", "x'; DROP TABLE pt_master; --", 1]
    for forged in (
        [decoded[0], forged_values],
        ["' OR 1=1 --", decoded[1]],
        [decoded[0], forged_values * 3],
        "'; DROP TABLE pt_master; --",
    ):
        cursor = base64.urlsafe_b64encode(orjson.dumps(forged)).decode().rstrip("=")
        status, body = _search(client, f"Patient?_count=2&_sort=family&_cursor={cursor}")
        assert status in (200, 400)
    assert fingerprint() == before


@pytest.mark.parametrize(
    "query", ["Patient?name=x%00", "Patient?identifier=a%00b", "Patient?_id=a%00b", "Observation?code=http://loinc.org|2345-7%00"]
)
def test_nul_in_search_value_is_a_client_error(backend, query):
    """psycopg2 refuses NUL in a string parameter with a plain ValueError (once a 500 on PostgreSQL)."""
    client, _ = backend
    status, body = _search(client, query)
    assert status == 400
    assert body["issue"][0]["code"] == "invalid"


# -- MariaDB --------------------------------------------------------------------------------


@pytest.mark.mariadb
def test_mariadb_engine_refuses_writes(mariadb_url):
    table = f"fhir_facade_ro_probe_{os.getpid()}"
    writable = sa.create_engine(mariadb_url, poolclass=sa.NullPool)
    read_only = create_legacy_engine(mariadb_url)
    try:
        with writable.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, val VARCHAR(20))")
            conn.exec_driver_sql(f"INSERT INTO {table} VALUES (1, 'original')")
        writes = [
            f"INSERT INTO {table} VALUES (2, 'inserted')",
            f"UPDATE {table} SET val = 'changed'",
            f"DELETE FROM {table}",
            f"TRUNCATE TABLE {table}",
            f"ALTER TABLE {table} ADD COLUMN extra INTEGER",
            f"CREATE TABLE {table}_new (id INTEGER)",
            f"CREATE INDEX ix_{table} ON {table} (val)",
            f"DROP TABLE {table}",
        ]
        for sql in writes:
            with pytest.raises(sa.exc.OperationalError) as caught, read_only.begin() as conn:
                conn.exec_driver_sql(sql)
            assert isinstance(caught.value.orig, pymysql.err.OperationalError), sql
            assert caught.value.orig.args[0] == 1792, sql  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
        # every pooled connection is read-only, not just the first one
        with read_only.connect() as first, read_only.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql(f"SELECT id, val FROM {table}").all() == [(1, "original")]
                with pytest.raises(sa.exc.OperationalError):
                    conn.exec_driver_sql(f"UPDATE {table} SET val = 'changed'")
                conn.rollback()
        with writable.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT id, val FROM {table}").all() == [(1, "original")]
            assert conn.exec_driver_sql(f"SHOW TABLES LIKE '{table}_new'").all() == []
    finally:
        read_only.dispose()
        with writable.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}_new")
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        writable.dispose()
