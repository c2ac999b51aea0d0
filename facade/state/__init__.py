"""The façade's own state database: what every worker and host must share.

Authorization codes, refresh tokens, revocations, replay caches and the audit
trail live here, never in process memory, so several workers behind a load
balancer behave as one. SQLite by default (a file in the data directory),
PostgreSQL when ``[state] url`` says so. This database is the façade's, not the
legacy EHR's: it is written to, and it never holds legacy tables.

Feature modules declare their tables on ``metadata`` and reach the database
through ``StateStore.engine``.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()


class StateStore:
    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # One writer at a time is SQLite's rule; WAL lets readers go on meanwhile.
            self.engine = sa.create_engine(url, connect_args={"timeout": 15})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)

    def create_tables(self) -> None:
        create_state_tables(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def create_state_tables(engine: sa.Engine) -> None:
    """Create missing tables: idempotent, and safe when several workers start at once. A worker
    may create a table between another's check and its CREATE; the loser checks again. Every
    lost race means another worker made progress, so this ends once all tables exist."""
    attempts = 4 * len(metadata.tables) + 4
    for attempt in range(attempts):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.01)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    # In WAL mode NORMAL syncs at checkpoints, not every commit: a crash of the process loses
    # nothing, a power cut may lose the last commits. Per-request audit appends need that speed.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
