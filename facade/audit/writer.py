"""Group commit for audit records: concurrent requests share one transaction.

A request hands its record to the process's writer thread and waits until the
transaction holding it has committed, so no response leaves before its record
is durable — exactly as with one transaction per record. What changes is the
cost: while one batch is being written, the records of every other request that
arrives queue up, and the next batch writes them all in one transaction under
one head-row lock. Under load the per-record cost falls with the batch size;
alone, a request waits for its own transaction only (no timer, no added delay).

Fail closed: a full queue, a batch that fails to commit, or a commit that takes
longer than ``wait_timeout`` raises :class:`AuditUnavailable` in the waiting
request, which then withholds its response (503).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import secrets
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any

log = logging.getLogger("facade.audit.writer")

MAX_PENDING = 2000  # records waiting for a batch; beyond this, requests are refused (503)
MAX_BATCH = 500  # records per transaction
WAIT_TIMEOUT = 10.0  # seconds a request waits for its commit before giving up (503)

_STOP = object()
_writers: weakref.WeakSet[GroupCommitWriter] = weakref.WeakSet()


class AuditUnavailable(Exception):
    """The record was not (or not yet) committed; the response must not be sent."""


def new_writer_id() -> str:
    """A name for one writer of records (a spool file, a process's commit writer), unique
    across hosts and restarts: each record carries it with its own number in that writer's
    sequence, so a lost or repeated record shows as a gap or a repeat (store.verify)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(6)}"


class _Slot:
    """One waiting record: set when its batch committed (``seq``) or failed (``error``)."""

    __slots__ = ("done", "error", "row", "seq")

    def __init__(self, row: Any):
        self.row = row
        self.done = threading.Event()
        self.seq: int | None = None
        self.error: BaseException | None = None


class GroupCommitWriter:
    def __init__(
        self,
        write_batch: Callable[[list[Any]], list[int | None]],
        *,
        max_pending: int = MAX_PENDING,
        max_batch: int = MAX_BATCH,
        wait_timeout: float = WAIT_TIMEOUT,
    ):
        """``write_batch(rows)`` writes the rows in one transaction, returning their sequence numbers."""
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._wait_timeout = wait_timeout
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._closed = False
        _writers.add(self)

    def submit(self, row: Any) -> int:
        """Queue ``row`` and wait until it is committed; its sequence number, or AuditUnavailable."""
        if self._closed:
            raise AuditUnavailable("the audit writer is shut down")
        self._start()
        slot = _Slot(row)
        try:
            self._queue.put_nowait(slot)
        except queue.Full:
            raise AuditUnavailable("too many audit records waiting") from None
        if not slot.done.wait(self._wait_timeout):
            # The record may still be committed later: the trail then shows an access whose
            # response was withheld — more than happened, never less.
            raise AuditUnavailable("the audit record was not committed in time")
        if slot.error is not None:
            raise AuditUnavailable(f"the audit batch failed ({type(slot.error).__name__})") from slot.error
        return slot.seq  # type: ignore[return-value]

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the thread. Later submissions are refused."""
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)

    def _start(self) -> None:
        # After a fork the parent's thread does not exist in the child: start one per process.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                if self._pid != os.getpid() and self._pid:
                    self._queue = queue.Queue(maxsize=self._queue.maxsize)  # the parent's waiters are not ours
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = [first], False
            while len(batch) < self._max_batch:  # everything that queued while the last batch was written
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Slot]) -> None:
        try:
            seqs = self._write_batch([slot.row for slot in batch])
        except BaseException as error:  # noqa: BLE001 - every waiter must hear of it, the thread must live
            log.error("audit batch of %d record(s) failed (%s)", len(batch), type(error).__name__)
            for slot in batch:
                slot.error = error
                slot.done.set()
            return
        for slot, seq in zip(batch, seqs):
            slot.seq = seq
            slot.done.set()


def close_all() -> None:
    """Drain and stop every writer of this process (at exit, and when a gunicorn worker exits)."""
    for writer in list(_writers):
        writer.close()


atexit.register(close_all)
