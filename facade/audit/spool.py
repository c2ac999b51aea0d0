"""Audit spool: a record reaches a local file before its response leaves, and a
background thread moves it into the hash chain in the state database.

Why not commit every record before answering (``delivery = "commit"``, writer.py):
the chain is one sequence, so committing it is serialised across every worker,
and on a 2-core machine that commit halved the throughput of a Patient read.
Appending a line to a file the worker owns costs one ``write`` call.

Durability: ``write`` returns once the kernel holds the line, so a record
survives the crash of its worker, which is also what a SQLite commit in WAL mode
with ``synchronous=NORMAL`` (the state database's setting) promises; a power cut
may lose the last records of either. A line that cannot be written fails its
request (503), as a failed commit does.

Exactly once: the shipped offset of each spool file is stored in the same
transaction as the records shipped from it, and it always ends a complete line.
Each file is one *writer*: its records carry the file's writer id and their number
in it, inside the hashed content, so ``verify`` would show a lost record as a gap
and a repeated one as a repeat, and the store refuses a second copy.

Ownership: a worker holds an ``flock`` on its spool file for as long as it writes
to it. A file nobody holds belongs to a worker that ended (or a file that was
rotated); any shipper of the same state database ships what is left of it,
from the stored offset, and deletes it. A line cut short by a crash has no
newline and is never shipped: its request got no response.

Back-pressure: when the state database cannot take records for a long time, the
unshipped backlog grows; past ``max_backlog`` bytes requests are refused (503)
rather than served unaudited.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import orjson

from facade.audit.writer import AuditUnavailable, new_writer_id

log = logging.getLogger("facade.audit.spool")

SHIP_INTERVAL = 0.05  # seconds between shipments: how long a record may wait for the chain
MAX_BACKLOG = 64 * 2**20  # unshipped bytes per worker before requests are refused
ROTATE_BYTES = 64 * 2**20  # a spool file this large is retired and a new one started
SHIP_LINES = 2000  # records per transaction
ORPHAN_SCAN = 2.0  # seconds between looks for spool files of ended workers
SUFFIX = ".spool"

_spools: weakref.WeakSet[AuditSpool] = weakref.WeakSet()

# ship(spool name, offset after the lines, lines) writes the lines to the chain and stores the
# offset, in one transaction; shipped_offset(name) reads the stored offset (0 if none).
Ship = Callable[[str, int, list[bytes]], None]
ShippedOffset = Callable[[str], int]


class _Spool:
    """One open spool file: written by this process's requests, shipped by its thread.
    The file is one writer of the chain: its records are numbered 1, 2, 3… in the order written."""

    def __init__(self, directory: Path):
        self.writer = new_writer_id()
        self.name = f"{self.writer}{SUFFIX}"
        self.path = directory / self.name
        # Opened and locked under a name no shipper looks at, then given its own: found unlocked
        # for an instant, another worker's shipper took it for a dead worker's, shipped it empty
        # and deleted it, and what this worker then wrote was lost.
        opening = directory / f"{self.name}.opening"
        self.fd = os.open(opening, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(opening, self.path)
        except OSError:
            os.close(self.fd)
            with contextlib.suppress(OSError):
                opening.unlink()
            raise
        self.written = 0  # bytes of complete lines
        self.shipped = 0
        self.records = 0  # complete lines written: the last sequence number given

    def retire(self) -> None:
        """Stop writing: the file becomes an orphan, shipped and deleted by the next scan."""
        fd, self.fd = self.fd, -1  # never written through again, whatever number the OS reuses
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing releases the flock


class AuditSpool:
    def __init__(
        self,
        directory: str | Path,
        ship: Ship,
        shipped_offset: ShippedOffset,
        *,
        interval: float = SHIP_INTERVAL,
        max_backlog: int = MAX_BACKLOG,
        rotate_bytes: int = ROTATE_BYTES,
    ):
        self.directory = Path(directory)
        self._ship, self._shipped_offset = ship, shipped_offset
        self._interval, self._max_backlog, self._rotate_bytes = interval, max_backlog, rotate_bytes
        self._write_lock = threading.Lock()  # one line at a time into the current file
        self._ship_lock = threading.Lock()  # one shipment at a time (thread, flush, close)
        self._spool: _Spool | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_scan = 0.0
        self._closed = False
        self._waiting_since: float | None = None  # when this process's backlog last became non-empty
        self._retired: dict[str, int] = {}  # this process's retired files → bytes they held unshipped
        _spools.add(self)

    # -- requests ---------------------------------------------------------------------------

    def append(self, record: dict) -> None:
        """Write one record, numbered in this file's sequence; AuditUnavailable if it cannot be."""
        if self._closed:
            raise AuditUnavailable("the audit spool is shut down")
        with self._write_lock:
            try:
                spool = self._current()
            except OSError as error:
                raise AuditUnavailable(f"the audit spool could not be opened ({type(error).__name__})") from None
            if self.unshipped_bytes() > self._max_backlog:
                raise AuditUnavailable("the audit backlog is full: the state database is not taking records")
            # orjson writes no newline inside a document: one line per record.
            data = orjson.dumps({**record, "writer": spool.writer, "wseq": spool.records + 1}, option=orjson.OPT_SORT_KEYS) + b"\n"
            try:
                done = os.write(spool.fd, data)
            except OSError as error:
                self._replace(spool)
                raise AuditUnavailable(f"the audit spool could not be written ({type(error).__name__})") from None
            if done != len(data):  # a cut line: never shipped; start a clean file for the next
                self._replace(spool)
                raise AuditUnavailable("the audit spool could not be written (short write)")
            if self._waiting_since is None:
                self._waiting_since = time.monotonic()
            spool.written += done
            spool.records += 1
            if spool.written >= self._rotate_bytes:
                self._replace(spool)

    def unshipped_bytes(self) -> int:
        """Bytes of records this process wrote that are not in the chain yet (retired files included)."""
        spool = self._spool if self._pid == os.getpid() else None
        current = 0 if spool is None else max(0, spool.written - spool.shipped)
        return current + sum(self._retired.values())

    def lag(self) -> float:
        """Seconds this process's oldest unshipped record has waited (at most; 0 when none waits)."""
        since = self._waiting_since
        return 0.0 if since is None or not self.unshipped_bytes() else time.monotonic() - since

    # -- shipping ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Ship everything spooled so far, this process's and ended workers' (read-your-writes)."""
        with self._ship_lock:
            self._ship_own()
            self._ship_orphans()

    def close(self) -> None:
        """Ship what is spooled, stop the thread, delete the file; later records are refused."""
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid() and self._thread is not threading.current_thread():
            self._thread.join(10)
        with self._ship_lock, self._write_lock:  # no shipment, no write meanwhile
            spool = self._spool if self._pid == os.getpid() else None
            if spool is not None:
                try:
                    self._ship_own()
                except Exception as error:  # noqa: BLE001 - the file stays: the next shipper takes it
                    log.error("audit records could not be shipped at shutdown (%s); they wait in %s", type(error).__name__, self.directory)
                spool.retire()
                if spool.shipped == spool.written:
                    with contextlib.suppress(OSError):
                        spool.path.unlink()
                self._spool = None

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval):
            with self._ship_lock:
                try:
                    self._ship_own()
                    if time.monotonic() >= self._next_scan:
                        self._next_scan = time.monotonic() + ORPHAN_SCAN
                        self._ship_orphans()
                except Exception as error:  # noqa: BLE001 - the state database is down: try again later
                    if not failing:  # once per outage, not every interval
                        log.error(
                            "audit records cannot be shipped to the state database (%s); they wait in %s",
                            type(error).__name__,
                            self.directory,
                        )
                    failing = True
                    continue
            if failing:
                log.warning("audit shipping resumed")
                failing = False

    def _ship_own(self) -> None:
        spool = self._spool if self._pid == os.getpid() else None
        if spool is not None and spool.shipped < spool.written:
            with open(spool.path, "rb") as handle:
                spool.shipped = self._ship_file(spool.name, handle, spool.shipped)
        if not self.unshipped_bytes():  # (a line may be shipped before its writer counted it: >=)
            self._waiting_since = None

    def _ship_file(self, name: str, handle: BinaryIO, offset: int) -> int:
        """Ship the complete lines of ``handle`` after ``offset``; returns the offset reached,
        which is always the end of the last complete line shipped.

        A request thread may be writing a line right now, and a long one (a search page
        naming a thousand resources) becomes visible in pieces: the reader can see its
        first part without its newline. Each pass therefore seeks to the offset it reached
        and stops at the first line without a newline, so that part is read again, whole,
        by a later shipment and never shipped split or twice."""
        while True:
            handle.seek(offset)
            lines: list[bytes] = []
            end = offset
            incomplete = False
            for raw in handle:
                if not raw.endswith(b"\n"):
                    incomplete = True  # cut short (or still being written): not a record yet
                    break
                lines.append(raw[:-1])
                end += len(raw)
                if len(lines) >= SHIP_LINES:
                    break
            if lines:
                self._ship(name, end, lines)
                offset = end
            if incomplete or len(lines) < SHIP_LINES:
                return offset

    def _ship_orphans(self) -> None:
        """Ship and delete the spool files no live writer holds."""
        own = self._spool.name if self._spool is not None and self._pid == os.getpid() else None
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path.name == own:
                continue
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue  # deleted meanwhile by another shipper
            with handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its worker is alive, or another shipper has it
                try:
                    if os.fstat(handle.fileno()).st_ino != path.stat().st_ino:
                        continue  # shipped and deleted (and the name reused) meanwhile
                except OSError:
                    continue
                self._ship_file(path.name, handle, self._shipped_offset(path.name))
                path.unlink()
                self._retired.pop(path.name, None)

    # -- the current file -------------------------------------------------------------------

    def _current(self) -> _Spool:
        if self._pid != os.getpid():  # a forked worker has its own file and its own shipper
            self._spool, self._pid, self._retired, self._waiting_since = None, os.getpid(), {}, None
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="audit-shipper", daemon=True)
            self._thread.start()
        if self._spool is None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._spool = _Spool(self.directory)
        return self._spool

    def _replace(self, spool: _Spool) -> None:
        """Retire ``spool`` (its unshipped lines go to the next orphan scan) and open a fresh one.
        Called with the write lock held; never waits for a shipment."""
        self._spool = None  # if no new file can be opened, the next append tries again
        spool.retire()
        if spool.written > spool.shipped:
            self._retired[spool.name] = spool.written - spool.shipped
        self._next_scan = 0.0
        try:
            self._spool = _Spool(self.directory)
        except OSError as error:  # the next append tries again (and is refused while it cannot)
            log.error("a new audit spool file could not be opened (%s)", type(error).__name__)


def close_all() -> None:
    """Ship and close every spool of this process (at exit, and when a gunicorn worker exits)."""
    for spool in list(_spools):
        spool.close()


atexit.register(close_all)
