"""A throw-away database on SQLite, PostgreSQL or MariaDB, for tests that load their own schema.

``scratch_database(engine, tmp_path, service_url)`` yields the URL to load it with (read-write);
the façade opens it with :func:`legacy_adapters.engines.create_legacy_engine`, read-only.
PostgreSQL gets a schema of its own in the shared database (reached through ``search_path``),
MariaDB a database of its own; both are named after the process and a random suffix, and dropped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from support.pg_demo import with_search_path

ENGINES = ("sqlite", "postgresql", "mariadb")


@contextlib.contextmanager
def scratch_database(engine: str, tmp_path: Path, service_url: str | None = None, prefix: str = "scratch") -> Iterator[str]:
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / (name + '.sqlite')}"
        return
    assert service_url is not None
    admin = sa.create_engine(service_url, poolclass=sa.NullPool)
    create, drop = (
        (f"CREATE SCHEMA {name}", f"DROP SCHEMA IF EXISTS {name} CASCADE")
        if engine == "postgresql"
        else (f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", f"DROP DATABASE IF EXISTS {name}")
    )
    with admin.begin() as connection:
        connection.exec_driver_sql(create)
    try:
        if engine == "postgresql":
            yield with_search_path(service_url, name)
        else:
            yield sa.engine.make_url(service_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(drop)
        admin.dispose()


def reader_url(url: str) -> str:
    """The URL the façade opens: SQLite files read-only, the others as they are (sessions are read-only)."""
    from legacy_adapters.engines import sqlite_url

    return sqlite_url(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else url
