"""The live terminology of a running server: one immutable snapshot, swapped whole on reload.

Reload is by file change: at most every ``check_seconds`` (default 5) the registry compares
the modification times and sizes of every file in its crosswalk sets with what it loaded;
when any differs it loads a complete new snapshot and swaps it in with one assignment.
A set that fails to load (a typo in a CSV) is logged and the previous snapshot stays in
service. Each worker process checks for itself, so editing the files is all it takes —
no restart, no signal. ``reload()`` forces a check (the CLI and tests use it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from terminology.files import TerminologyError, load_snapshot, manifest_files
from terminology.model import EMPTY, Snapshot

log = logging.getLogger(__name__)


class Terminology:
    def __init__(self, manifests: Sequence[str | Path], check_seconds: float = 5.0, code_tables: dict | None = None):
        self.manifests = [Path(m) for m in manifests]
        self.code_tables = dict(code_tables or {})  # name -> CodeTableSpec: local code systems kept in legacy tables
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._listed: dict[Path, tuple[tuple[int, int], list[Path]]] = {}  # manifest → (its stamp, its files)
        self._stamps = self._file_stamps()
        self._snapshot = load_snapshot(self.manifests, generation=1) if self.manifests else EMPTY
        self._checked = time.monotonic()

    def current(self) -> Snapshot:
        """The snapshot to use for the whole of one piece of work (take it once, then keep it)."""
        if time.monotonic() - self._checked >= self.check_seconds:
            self.reload()
        return self._snapshot

    @property
    def generation(self) -> int:
        return self.current().generation

    def reload(self) -> bool:
        """Load the sets again if any file changed; True when a new snapshot is in service."""
        with self._lock:
            self._checked = time.monotonic()
            try:
                stamps = self._file_stamps()
                if stamps == self._stamps:
                    return False
                snapshot = load_snapshot(self.manifests, generation=self._snapshot.generation + 1)
            except TerminologyError as exc:
                log.error("crosswalks not reloaded, the previous ones stay in service: %s", exc)
                return False
            self._snapshot, self._stamps = snapshot, stamps
            log.info("crosswalks reloaded (generation %d, version %s)", snapshot.generation, snapshot.version)
            return True

    def _file_stamps(self) -> dict[str, tuple[int, int]]:
        stamps = {}
        for manifest in self.manifests:
            for path in self._files_of(manifest):
                stamps[str(path)] = _stamp(path)
        return stamps

    def _files_of(self, manifest: Path) -> list[Path]:
        """The files a set consists of, read from its manifest only when the manifest changed:
        parsing it at every check was a pause of tens of milliseconds in some request."""
        stamp = _stamp(manifest)
        known = self._listed.get(manifest)
        if known is None or known[0] != stamp:
            known = self._listed[manifest] = (stamp, manifest_files(manifest))
        return known[1]


def _stamp(path: Path) -> tuple[int, int]:
    try:
        status = os.stat(path)
    except OSError:
        return (-1, -1)
    return (status.st_mtime_ns, status.st_size)
