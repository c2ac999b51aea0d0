"""Bounded waits on network databases, for the legacy database and the façade's state database.

A database behind a partition (packets dropped, sockets left open) answers nothing, and nothing
in the stack gives up on its own: a statement timeout is enforced by the server, which never got
the statement; libpq has no read timeout; TCP retransmits for about 15 minutes. Here:

- connecting gives up after ``network_timeout`` (the drivers' connect timeout);
- TCP keepalive and ``tcp_user_timeout`` (PostgreSQL) let the kernel notice a dead peer;
- every statement and every pre-ping on PostgreSQL is watched: one that has not returned after
  the server's own statement timeout plus ``network_timeout`` gets its socket shut down, so the
  driver fails as on any lost connection (the pool discards it, the client gets 503). On
  MySQL/MariaDB the driver's socket read and write timeouts do the same.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

# Seconds to connect, and to wait beyond a statement's own timeout, before a silent database is down.
NETWORK_TIMEOUT = 5


def connect_args(dialect: str, *, network_timeout: int, statement_timeout: int) -> dict[str, Any]:
    """Driver arguments that bound connecting and let the kernel notice a dead peer."""
    if dialect == "postgresql":
        return {
            "connect_timeout": network_timeout,
            "keepalives": 1,
            "keepalives_idle": network_timeout,
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": network_timeout * 1000,  # unacknowledged data: the peer is gone
        }
    if dialect in ("mysql", "mariadb"):
        limit = statement_timeout + network_timeout
        return {"connect_timeout": network_timeout, "read_timeout": limit, "write_timeout": limit}
    return {}


def watch(engine: sa.Engine, *, network_timeout: int, statement_timeout: int) -> None:
    """Cut a PostgreSQL connection whose statement or pre-ping outlives its time (see above)."""
    if engine.dialect.name != "postgresql":
        return
    statement_limit = statement_timeout + network_timeout

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn, _cursor, _statement, _parameters, context, _many):
        conn.info["watchdog"] = _WATCHDOG.arm(conn.connection.dbapi_connection, statement_limit)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn, *_args):
        _WATCHDOG.disarm(conn.info.pop("watchdog", None))

    @event.listens_for(engine, "handle_error")
    def _failed(context):
        if context.connection is not None:
            _WATCHDOG.disarm(context.connection.info.pop("watchdog", None))

    ping = engine.dialect.do_ping

    def watched_ping(dbapi_connection: Any) -> bool:
        with _WATCHDOG.watching(dbapi_connection, network_timeout):
            return ping(dbapi_connection)

    engine.dialect.do_ping = watched_ping  # type: ignore[method-assign]  # the pool's pre-ping, on this engine only


class _Watchdog:
    """One thread per process; arming and disarming are a dict insert and delete."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, Any]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, dbapi_connection: Any, seconds: float) -> int:
        token = next(self._tokens)
        with self._lock:
            self._armed[token] = (time.monotonic() + seconds, dbapi_connection)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
        return token

    def disarm(self, token: int | None) -> None:
        if token is not None:
            with self._lock:
                self._armed.pop(token, None)

    @contextlib.contextmanager
    def watching(self, dbapi_connection: Any, seconds: float) -> Iterator[None]:
        token = self.arm(dbapi_connection, seconds)
        try:
            yield
        finally:
            self.disarm(token)

    def _run(self) -> None:
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self._lock:  # held while cutting: a disarmed connection is never cut afterwards
                for token, (deadline, dbapi_connection) in list(self._armed.items()):
                    if now >= deadline:
                        del self._armed[token]
                        _cut(dbapi_connection)


def _cut(dbapi_connection: Any) -> None:
    """Shut the connection's socket down: its driver then fails as on a lost connection."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = dbapi_connection.fileno()
        with socket.socket(fileno=socket.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()
