"""Read-only connections to legacy databases, and what their failures mean to a client.

The façade never writes to the system of record: SQLite files are opened with
``mode=ro`` (and ``query_only``), PostgreSQL sessions default to read-only
transactions, MySQL/MariaDB sessions are set ``READ ONLY``. Connections are
pinged before use, so the server recovers by itself once a database comes back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from facade.errors import FacadeError, UpstreamUnavailable

log = logging.getLogger(__name__)

# Failures of the connection rather than of the statement: the database is down or unreachable.
_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError, sa.exc.TimeoutError)


def sqlite_url(path: str | Path, read_only: bool = True) -> str:
    resolved = Path(path).resolve()
    return f"sqlite:///file:{resolved}?mode=ro&uri=true" if read_only else f"sqlite:///{resolved}"


def create_legacy_engine(url: str, *, pool_size: int = 5, statement_timeout_ms: int = 30000) -> sa.Engine:
    """An engine whose every connection refuses writes."""
    dialect = sa.engine.make_url(url).get_backend_name()
    connect_args: dict = {}
    options: dict = {"pool_pre_ping": True, "pool_recycle": 1800}
    if dialect == "sqlite":
        if "mode=ro" not in url and ":memory:" not in url:
            raise ValueError("SQLite legacy databases must be opened read-only: use sqlite_url(path)")
        connect_args["check_same_thread"] = False
    elif dialect == "postgresql":
        connect_args["options"] = f"-c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"
        connect_args["connect_timeout"] = 5
        options.update(pool_size=pool_size, max_overflow=pool_size)
    elif dialect in ("mysql", "mariadb"):
        connect_args["connect_timeout"] = 5
        options.update(pool_size=pool_size, max_overflow=pool_size)
    engine = sa.create_engine(url, connect_args=connect_args, **options)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection, _record):  # noqa: ANN001 - DBAPI objects are untyped
        cursor = dbapi_connection.cursor()
        if dialect == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        elif dialect in ("mysql", "mariadb"):
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        cursor.close()

    return engine


@contextlib.contextmanager
def legacy_errors() -> Iterator[None]:
    """Turn driver failures into façade errors; never leak SQL or data to the client."""
    try:
        yield
    except _UNAVAILABLE as exc:
        log.warning("legacy database unavailable: %s", type(exc.orig or exc).__name__)
        raise UpstreamUnavailable("The legacy database is unavailable; try again shortly") from None
    except sa.exc.DBAPIError as exc:
        log.error("legacy database error: %s", type(exc.orig or exc).__name__)
        raise FacadeError("The legacy database could not answer this request") from None
