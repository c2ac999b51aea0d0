"""Request ids on every log line, and logs as JSON when an operator's log shipper wants them.

The HTTP layer sets :data:`request_id` for each request (the client's ``X-Request-ID`` when it
is a plain token, else a new one); :class:`RequestIdFilter` copies it onto every log record of
that request, whichever logger writes it. Messages never carry queries, bodies or ids of
patient data (see SECURITY.md), so the JSON lines hold only what the text lines hold.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

request_id: ContextVar[str | None] = ContextVar("fhir_facade_request_id", default=None)
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class _Ids:
    """New request ids: unique, not secret — a random prefix per process and a counter (reading
    the system's random source for every request cost tens of microseconds)."""

    def __init__(self) -> None:
        self._pid = 0
        self._prefix = ""
        self._counter = itertools.count(1)

    def new(self) -> str:
        if self._pid != os.getpid():  # a forked worker starts its own sequence
            self._pid, self._prefix, self._counter = os.getpid(), secrets.token_hex(6), itertools.count(1)
        return f"{self._prefix}{next(self._counter):012x}"


_ids = _Ids()


def accepted_request_id(header: str | None) -> str:
    """The client's request id when it is a plain token (letters, digits, ``._:-``, at most 128),
    else a new one: a header value is never copied into logs as it came."""
    if header and _CLIENT_ID.fullmatch(header):
        return header
    return _ids.new()


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or ``-``) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message (and the exception type)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or request_id.get() or None,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """The root logger writes to stderr in ``log_format``, each line with its request id."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
