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

import contextlib
import fcntl
import os
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from legacy_adapters import watchdog
from legacy_adapters.watchdog import NETWORK_TIMEOUT

metadata = sa.MetaData()


class StateStore:
    def __init__(self, url: str, *, statement_timeout: int = 10, network_timeout: int = NETWORK_TIMEOUT):
        self.url = url
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # One writer at a time is SQLite's rule; WAL lets readers go on meanwhile.
            # hide_parameters: a failed statement's values (ids, queries of audit records) never reach a log.
            self.engine = sa.create_engine(url, connect_args={"timeout": 15}, hide_parameters=True)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            # A partitioned state database fails in bounded time, as the legacy one does (503, not a hang).
            parsed = sa.engine.make_url(url)
            dialect = parsed.get_backend_name()
            connect_args = watchdog.connect_args(dialect, network_timeout=network_timeout, statement_timeout=statement_timeout)
            connect_args = {k: v for k, v in connect_args.items() if k not in parsed.query}
            if dialect == "postgresql":  # the URL's own options (a search_path…) come after, and may override it
                connect_args["options"] = " ".join([f"-c statement_timeout={statement_timeout * 1000}", *_options(parsed)])
            self.engine = sa.create_engine(url, pool_pre_ping=True, pool_timeout=5, hide_parameters=True, connect_args=connect_args)
            watchdog.watch(self.engine, network_timeout=network_timeout, statement_timeout=statement_timeout)

    def create_tables(self) -> None:
        """Every table the imported feature modules declare (tokens, revocations, the audit trail),
        once at start-up; idempotent."""
        create_state_tables(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def create_state_tables(engine: sa.Engine) -> None:
    """Create missing tables: idempotent, and safe when several workers start at once. A worker
    may create a table between another's check and its CREATE; the loser checks again. Every
    lost race means another worker made progress, so this ends once all tables exist. Tables an
    earlier version created get the columns added since (:func:`add_new_columns`)."""
    attempts = 4 * len(metadata.tables) + 4
    for attempt in range(attempts):
        try:
            metadata.create_all(engine, checkfirst=True)
            break
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.01)
    add_new_columns(engine)


def add_new_columns(engine: sa.Engine) -> None:
    """``ALTER TABLE … ADD COLUMN`` for each declared column a table lacks. New columns are
    nullable (rows from before keep NULL there); one that is not needs a migration of its own."""
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(f"state table {table.name} lacks its column {column.name}, which cannot be added as NULL")
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
            except (sa.exc.OperationalError, sa.exc.ProgrammingError):
                if column.name not in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
                    raise  # not a race with another worker adding it


class WriterLock:
    """Queue a host's SQLite writers on a file lock instead of in SQLite's busy handler.

    SQLite answers a writer that finds the database locked by sleeping 1, 2, 5, 10 … ms and
    trying again, so with two worker processes appending audit records a request can wait tens
    of milliseconds for a lock released long before. ``flock`` wakes the next writer the moment
    the lock is released. Only a SQLite file needs it (and it is only shared on one host);
    PostgreSQL's row locks already wake waiters.
    """

    def __init__(self, engine: sa.Engine):
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._path = f"{database}-writer.lock" if database and database != ":memory:" else None
        self._thread_lock = threading.Lock()  # flock is per open file: threads queue here first
        self._fd: int | None = None
        self._pid = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._path is None:
            yield
            return
        with self._thread_lock:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        assert self._path is not None
        if self._fd is None or self._pid != os.getpid():  # a forked worker needs its own open file
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            weakref.finalize(self, os.close, self._fd)
        return self._fd


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    # In WAL mode NORMAL syncs at checkpoints, not every commit: a crash of the process loses
    # nothing, a power cut may lose the last commits. Per-request audit appends need that speed.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _options(url: sa.engine.URL) -> list[str]:
    value = url.query.get("options")
    return [] if value is None else [value] if isinstance(value, str) else list(value)
