"""Background threads that claim export jobs and run them, a bounded number per host.

Started by the first export request a process serves (after gunicorn forks, never before), so
every worker that answers exports also runs them; a job whose runner died is claimed again once
its lease runs out. Each thread runs one job at a time, holding one legacy connection while a
page is read. However many worker processes a host has, at most ``[bulk] threads`` exports run on
it at once (:class:`HostSlots`): the interactive API keeps the rest of the CPU and the pool.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from facade.bulk.engine import ExportEngine, Stopped
from facade.bulk.files import remove
from facade.bulk.jobs import COMPLETE, FAILED, JobStore
from facade.errors import FacadeError, UpstreamUnavailable

log = logging.getLogger("facade.bulk")
SWEEP_SECONDS = 30


class HostSlots:
    """``count`` lock files in the export directory: a running export holds one (``flock``), so a
    host runs at most ``count`` exports whatever its number of worker processes and threads."""

    def __init__(self, directory: Path, count: int):
        self.directory = directory
        self.count = count

    @contextlib.contextmanager
    def slot(self) -> Iterator[bool]:
        """True while a slot is held; False when every slot is taken."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for number in range(self.count):
            fd = os.open(self.directory / f".slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        yield False


class ExportRunner:
    def __init__(self, jobs: JobStore, engine: ExportEngine, root: Path, threads: int, *, poll: float = 0.5):
        self.jobs = jobs
        self.engine = engine
        self.root = root
        self.threads = threads
        self.poll = poll
        self._lock = threading.Lock()
        self._pid = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_sweep = 0.0
        self.slots = HostSlots(root, threads)

    def start(self) -> None:
        """Start this process's threads once (a no-op afterwards); wake them for a new job."""
        self._wake.set()
        if self._pid == os.getpid() or self.threads < 1:
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            for number in range(self.threads):
                threading.Thread(target=self._loop, name=f"bulk-export-{number}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
                with self.slots.slot() as held:
                    worked = held and self.run_one()
            except Exception as error:  # noqa: BLE001 - the state database is down: try again later
                log.warning("export runner: %s", type(error).__name__)
                worked = False
            if not worked:
                self._wake.wait(self.poll)
                self._wake.clear()

    def sweep(self, *, force: bool = False) -> None:
        """Remove expired and cancelled jobs and their files (at most every SWEEP_SECONDS)."""
        if not force and time.monotonic() - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = time.monotonic()
        for job_id in self.jobs.sweep():
            remove(self.root / job_id)

    def run_one(self, job_id: str | None = None) -> bool:
        """Claim one job (the oldest, or ``job_id``) and run it to its end; False when there was none to claim."""
        owner = f"{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(4)}"
        job = self.jobs.claim(owner, job_id)
        if job is None:
            return False

        def checkpoint(position: dict, outputs: list[dict], progress: str) -> bool:
            return self.jobs.checkpoint(job, owner, position, outputs, progress)

        try:
            outputs = self.engine.run(job, self.root / job.id, checkpoint)
        except Stopped:
            return True  # cancelled, or taken over: the new owner (or the sweep) goes on
        except UpstreamUnavailable:
            self.jobs.release(job, owner)  # the legacy database is down: resumed when it answers
            self._stop.wait(5)
            return True
        except FacadeError as error:
            self.jobs.finish(job, owner, FAILED, job.outputs, error.diagnostics)
            return True
        except Exception as error:  # noqa: BLE001 - any failure ends the job as failed, never the runner
            # The error's class only: its message may quote legacy data (no PHI in logs).
            log.error("export %s failed: %s", job.id, type(error).__name__)
            self.jobs.finish(job, owner, FAILED, job.outputs, f"The export failed ({type(error).__name__})")
            return True
        self.jobs.finish(job, owner, COMPLETE, outputs)
        return True
