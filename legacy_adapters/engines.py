"""Read-only connections to legacy databases, and what their failures mean to a client.

The façade never writes to the system of record: SQLite files are opened with
``mode=ro`` (and ``query_only``), PostgreSQL sessions default to read-only
transactions, MySQL/MariaDB sessions are set ``READ ONLY``. A connection that has
sat idle is pinged before use, and one that fails is dropped with the rest of the
pool, so the server recovers by itself once a database comes back.

Over the network every message is a round trip a request waits for. Reads need no
transaction around them (each statement sees a committed state; pages are keyset
cursors, not snapshots), so network engines run in autocommit: a read is one message
(its SELECT), not four (ping, BEGIN, SELECT, ROLLBACK).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from facade.errors import FacadeError, TooCostly, UpstreamUnavailable
from legacy_adapters import watchdog
from legacy_adapters.watchdog import NETWORK_TIMEOUT

log = logging.getLogger(__name__)

# Failures of the connection rather than of the statement: the database is down or unreachable.
_ALWAYS_UNAVAILABLE = (sa.exc.InterfaceError, sa.exc.DisconnectionError, sa.exc.TimeoutError)
# SQLite reports statement errors ("no such column") as OperationalError too; only these are outages.
_SQLITE_OUTAGES = ("unable to open", "database is locked", "disk i/o error", "database disk image is malformed")
# MySQL/MariaDB client error codes for a lost or refused server, and "too many connections".
_MYSQL_OUTAGES = {1040, 1053, 2002, 2003, 2005, 2006, 2013, 2055}
# A connection used this recently is trusted without a ping: under load every request reuses
# one, and a database that went away since fails the statement, which drops the pool (503 once).
PING_AFTER_IDLE = 10.0  # seconds


def sqlite_url(path: str | Path, read_only: bool = True) -> str:
    resolved = Path(path).resolve()
    return f"sqlite:///file:{resolved}?mode=ro&uri=true" if read_only else f"sqlite:///{resolved}"


def create_legacy_engine(
    url: str, *, pool_size: int = 5, statement_timeout_ms: int = 30000, network_timeout: int = NETWORK_TIMEOUT, autocommit: bool = True
) -> sa.Engine:
    """An engine whose every connection refuses writes, and whose waits are bounded
    (legacy_adapters/watchdog.py): a statement gets ``statement_timeout_ms`` on the server, and
    the client gives up ``network_timeout`` seconds later. ``autocommit=False``: for a tool that
    streams whole tables (PostgreSQL's server-side cursors live inside a transaction)."""
    parsed = sa.engine.make_url(url)
    dialect = parsed.get_backend_name()
    statement_timeout = max(1, -(-statement_timeout_ms // 1000))
    connect_args: dict = {
        k: v
        for k, v in watchdog.connect_args(dialect, network_timeout=network_timeout, statement_timeout=statement_timeout).items()
        if k not in parsed.query
    }
    options: dict = {"pool_recycle": 1800}
    autocommit = autocommit and dialect != "sqlite"  # a SQLite read holds no transaction open anyway
    if autocommit:
        options.update(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    if ":memory:" not in url:
        # A busy pool answers 503 after 5 s rather than holding the request until the worker times out.
        options["pool_timeout"] = 5
    if dialect == "sqlite":
        if "mode=ro" not in url and ":memory:" not in url:
            path = parsed.database or "/path/to/legacy.sqlite"
            raise ValueError(
                f"SQLite legacy databases must be opened read-only: write the URL as sqlite:///file:{path}?mode=ro&uri=true"
                " (commands that take --db also take the file's path)"
            )
        connect_args["check_same_thread"] = False
    elif dialect == "postgresql":
        # connect_args replace same-named URL query parameters, so merge with the URL's own
        # ``options`` (e.g. -csearch_path=...) instead of dropping them. Order matters: the
        # last -c wins, so the URL may override the statement timeout but never read-only.
        connect_args["options"] = " ".join(
            [f"-c statement_timeout={statement_timeout_ms}", *_query_values(parsed, "options"), "-c default_transaction_read_only=on"]
        )
        options.update(pool_size=pool_size, max_overflow=pool_size)
    elif dialect in ("mysql", "mariadb"):
        options.update(pool_size=pool_size, max_overflow=pool_size)
        # SQLAlchemy's MySQL compiler links a nested join to the next table as a whole, so its
        # cartesian-product linter misreads a page over variants (one scan joined to its
        # branch numbers, compiler._shared_scan) as unjoined. Joins here always come from the
        # mapping's match: conditions.
        options.update(enable_from_linting=False)
    # hide_parameters: a failed statement's values (patient ids, search values) never reach a log.
    engine = sa.create_engine(url, connect_args=connect_args, hide_parameters=True, **options)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        if dialect == "sqlite":
            cursor.execute("PRAGMA query_only = ON")
        elif dialect in ("mysql", "mariadb"):
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            try:  # the server cancels a long statement before the client's read timeout gives up
                cursor.execute(f"SET SESSION max_statement_time = {statement_timeout_ms / 1000:.3f}")  # MariaDB
            except Exception:  # noqa: BLE001 - MySQL names it differently (and counts SELECTs only)
                cursor.execute(f"SET SESSION max_execution_time = {int(statement_timeout_ms)}")
        cursor.close()

    watchdog.watch(engine, network_timeout=network_timeout, statement_timeout=statement_timeout)
    if dialect != "sqlite":
        _ping_when_idle(engine)
    if autocommit and dialect in ("mysql", "mariadb"):
        # Its drivers send ROLLBACK on every return to the pool, even in autocommit where no
        # transaction is open: a round trip per request for nothing.
        engine.dialect.do_rollback = lambda dbapi_connection: None  # type: ignore[method-assign]
    return engine


def _ping_when_idle(engine: sa.Engine) -> None:
    """Network databases and firewalls drop idle connections: one idle longer than
    PING_AFTER_IDLE is pinged when checked out (through the watchdog's bounded ping), and
    replaced if it does not answer."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        returned = record.info.get("returned")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:  # noqa: BLE001 - any failure: a dead connection
            alive = False
        if not alive:
            raise sa.exc.DisconnectionError("the pooled connection did not answer its ping")  # the pool connects anew


def _query_values(url: sa.engine.URL, name: str) -> list[str]:
    value = url.query.get(name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _cause(exc: BaseException) -> str:
    # Pool timeouts and disconnections are SQLAlchemy errors without a DBAPI ``orig``.
    return type(getattr(exc, "orig", None) or exc).__name__


@contextlib.contextmanager
def legacy_errors() -> Iterator[None]:
    """Turn driver failures into façade errors; never leak SQL or data to the client."""
    try:
        yield
    except (sa.exc.DBAPIError, *_ALWAYS_UNAVAILABLE) as exc:
        if is_timeout(exc):
            log.warning("legacy database statement timed out: %s", _cause(exc))
            raise TooCostly("The legacy database took too long to answer; narrow the search") from None
        if is_outage(exc):
            log.warning("legacy database unavailable: %s", _cause(exc))
            raise UpstreamUnavailable("The legacy database is unavailable; try again shortly") from None
        log.error("legacy database error: %s", _cause(exc))
        raise FacadeError("The legacy database could not answer this request") from None


def is_timeout(exc: BaseException) -> bool:
    """The statement ran past its time limit: the database is up, the query is too costly."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "pgcode", None) == "57014":  # PostgreSQL query_canceled (statement_timeout)
        return True
    code = orig.args[0] if orig is not None and getattr(orig, "args", None) else None
    return type(orig).__module__.startswith("pymysql") and code in (1969, 3024)  # max_statement_time / max_execution_time


def is_outage(exc: BaseException) -> bool:
    """Is the database down or unreachable (503, retry later), rather than refusing this statement (500)?"""
    if isinstance(exc, _ALWAYS_UNAVAILABLE) or getattr(exc, "connection_invalidated", False):
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    orig = getattr(exc, "orig", None)
    module = type(orig).__module__ if orig is not None else ""
    if module.startswith("sqlite3"):
        return any(marker in str(orig).lower() for marker in _SQLITE_OUTAGES)
    if module.startswith("pymysql") or module.startswith("MySQLdb"):
        code = orig.args[0] if orig is not None and orig.args else None
        return code in _MYSQL_OUTAGES
    return True  # PostgreSQL and others raise OperationalError for connection failures
