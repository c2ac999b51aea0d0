"""The demo legacy database generated into its own MariaDB database, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import sqlalchemy as sa

from legacy_adapters.sources.demo.generate import generate


@contextlib.contextmanager
def mariadb_demo(mariadb_url: str, name: str, patients: int) -> Iterator[str]:
    """Yield the URL of a fresh demo database ``<name>_<pid>`` under MariaDB's default,
    forgiving collation (per run, so concurrent runs never drop each other's)."""
    database = f"{name}_{os.getpid()}"
    admin = sa.create_engine(mariadb_url, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
        connection.exec_driver_sql(f"CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    try:
        url = sa.engine.make_url(mariadb_url).set(database=database).render_as_string(hide_password=False)
        generate(url, patients=patients)
        yield url
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
        admin.dispose()
