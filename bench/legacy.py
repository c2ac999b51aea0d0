"""The legacy database under test: the demo on SQLite, or loaded into a PostgreSQL or MariaDB server.

SQLite is the cached demo file (:func:`bench.data.ensure_database`). On a server the same
generated data (same size and seed, hence the same ids) goes into a schema (PostgreSQL) or
database (MariaDB) of the bench's own, loaded by the demo generator itself. With ``keep`` the
name carries only size, seed and generator hash, so the next run finds it loaded and reuses
it; otherwise the name also carries this process's id (concurrent runs never touch each
other's) and the database is dropped when the run ends.

The floor connects with the façade's driver and the connect arguments SQLAlchemy would pass
it (:func:`driver_args`, computed here so the floor itself never imports SQLAlchemy).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench import data
from legacy_adapters.engines import sqlite_url
from legacy_adapters.sources.demo import schema
from legacy_adapters.sources.demo.generate import DEMO_SEED, generate

ENGINES = ("sqlite", "postgresql", "mariadb")
# The servers the test suite uses, overridable the same way.
SERVICES = {
    "postgresql": ("FHIR_FACADE_TEST_POSTGRES", "postgresql+psycopg2://root@127.0.0.1:5432/test"),
    "mariadb": ("FHIR_FACADE_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
MARKER = "bench_load_complete"  # created last: a half-loaded database is never reused


class Unavailable(RuntimeError):
    """The database server does not answer."""


@dataclass(frozen=True)
class LegacyDatabase:
    engine: str  # sqlite, postgresql, mariadb
    url: str  # SQLAlchemy URL, read-only for SQLite
    label: str  # for the output: the file or server and schema, no password
    sqlite_path: Path | None = None


def service_url(engine: str) -> str:
    variable, default = SERVICES[engine]
    return os.environ.get(variable) or default


def check_service(engine: str) -> None:
    """Raise :class:`Unavailable` unless the engine's server answers (SQLite always does)."""
    if engine == "sqlite":
        return
    url = service_url(engine)
    try:
        admin = sa.create_engine(url, poolclass=sa.NullPool, connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        admin.dispose()
    except Exception as exc:
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        raise Unavailable(f"{engine} is not reachable at {shown} ({type(exc).__name__}); set {SERVICES[engine][0]}") from None


def _with_search_path(url: str, name: str) -> str:
    parsed = sa.engine.make_url(url)
    existing = parsed.query.get("options")
    existing = [existing] if isinstance(existing, str) else list(existing or ())
    return parsed.update_query_dict({"options": " ".join([*existing, f"-csearch_path={name}"])}).render_as_string(hide_password=False)


def _target_url(engine: str, admin_url: str, name: str) -> str:
    if engine == "postgresql":
        return _with_search_path(admin_url, name)
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def database_name(size: int, seed: int, keep: bool) -> str:
    """The schema (PostgreSQL) or database (MariaDB) the demo is loaded into."""
    return f"bench_demo_{size}_s{seed}_{data.generator_hash()}" + ("" if keep else f"_{os.getpid()}")


def drop(engine: str, name: str) -> None:
    """Drop a loaded demo (what ``--keep-database`` left behind)."""
    admin = sa.create_engine(service_url(engine), poolclass=sa.NullPool)
    try:
        _drop(admin, engine, name)
    finally:
        admin.dispose()


def _exists(admin: sa.Engine, name: str) -> bool:
    query = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = :s AND table_name = :t"
    with admin.connect() as conn:
        return bool(conn.execute(sa.text(query), {"s": name, "t": MARKER}).scalar())


def _drop(admin: sa.Engine, engine: str, name: str) -> None:
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE" if engine == "postgresql" else f"DROP DATABASE IF EXISTS {name}")


def _load(admin: sa.Engine, engine: str, name: str, url: str, size: int, seed: int) -> None:
    _drop(admin, engine, name)
    with admin.begin() as conn:
        # MariaDB: its default, forgiving collation, as the tests load it
        conn.exec_driver_sql(
            f"CREATE SCHEMA {name}"
            if engine == "postgresql"
            else f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        )
    print(f"loading the demo into {engine}: {size} patients (seed {seed}) -> {name}", flush=True)
    started = time.monotonic()
    writer = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        generate(writer, patients=size, seed=seed)
        with writer.begin() as conn:  # planner statistics, as the SQLite file has them
            tables = [t.name for t in schema.metadata.sorted_tables]
            if engine == "postgresql":
                for table in tables:
                    conn.exec_driver_sql(f"ANALYZE {table}")
            else:
                conn.exec_driver_sql(f"ANALYZE TABLE {', '.join(tables)}").fetchall()
            conn.exec_driver_sql(f"CREATE TABLE {MARKER} (done INTEGER)")
    finally:
        writer.dispose()
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)


def sqlite_database(size: int, seed: int = DEMO_SEED) -> LegacyDatabase:
    """The cached demo file, generated on first use."""
    path = data.ensure_database(size, seed)
    return LegacyDatabase("sqlite", sqlite_url(path), path.name, path)


@contextlib.contextmanager
def database(engine: str, size: int, seed: int, keep: bool = False) -> Iterator[LegacyDatabase]:
    """The demo at ``size`` patients on ``engine``; dropped afterwards unless ``keep``."""
    if engine == "sqlite":
        yield sqlite_database(size, seed)
        return
    admin_url = service_url(engine)
    name = database_name(size, seed, keep)
    url = _target_url(engine, admin_url, name)
    admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
    try:
        if keep and _exists(admin, name):
            print(f"reusing {engine} {name} (loaded by an earlier run with --keep-database)", flush=True)
        else:
            _load(admin, engine, name, url, size, seed)
        shown = sa.engine.make_url(admin_url)
        yield LegacyDatabase(engine, url, f"{engine} {shown.host}:{shown.port} {name}")
    finally:
        try:
            if not keep:
                _drop(admin, engine, name)
        finally:
            admin.dispose()


def driver_args(url: str) -> dict:
    """How the floor opens its connections to a server: the driver and its connect() arguments."""
    parsed = sa.engine.make_url(url)
    args, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    if args:
        raise ValueError("the floor expects keyword connect arguments")
    return {"driver": parsed.get_driver_name(), "kwargs": kwargs}
