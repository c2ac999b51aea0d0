"""One job's NDJSON files: one resource type per file, a new file past a size.

The job row lists the files as of its last checkpoint (name, type, count, bytes). A runner
resuming the job truncates the open file back to the bytes recorded there and removes files
started after it, so lines written after the checkpoint by a runner that died are written
once more, never twice.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

ERROR_FILE = "errors.ndjson"


class NdjsonFiles:
    def __init__(self, directory: Path, max_bytes: int, outputs: list[dict]):
        self.directory = directory
        self.max_bytes = max_bytes
        self.outputs = [dict(o) for o in outputs]  # checkpointed state, updated as lines are written
        self._open: BinaryIO | None = None
        self._open_name: str | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self._restore()

    def _restore(self) -> None:
        known = {o["name"]: o["bytes"] for o in self.outputs}
        for path in self.directory.iterdir():
            if path.name not in known:
                path.unlink()  # started after the last checkpoint
            elif path.stat().st_size != known[path.name]:
                with path.open("r+b") as handle:
                    handle.truncate(known[path.name])

    def write(self, resource_type: str, lines: list[bytes]) -> None:
        # One write per file a page's lines go to, not one per line: a call per resource was a
        # noticeable part of an export's CPU.
        while lines:
            current = self.outputs[-1] if self.outputs else None
            full = current is not None and current["count"] and current["bytes"] + len(lines[0]) > self.max_bytes
            if current is None or current["type"] != resource_type or full:
                current = self._start(resource_type)
            taken, size = self._fitting(current, lines)
            self._handle(current["name"]).write(b"".join(lines[:taken]))
            current["count"] += taken
            current["bytes"] += size
            lines = lines[taken:]

    def _fitting(self, current: dict, lines: list[bytes]) -> tuple[int, int]:
        """How many of ``lines`` go to the file ``current`` and their bytes: an empty file takes
        its first line whatever its size; past that, lines while the file stays within the size."""
        total = sum(map(len, lines))
        if current["bytes"] + total <= self.max_bytes:
            return len(lines), total
        taken = size = 0
        for line in lines:
            if (current["count"] or taken) and current["bytes"] + size + len(line) > self.max_bytes:
                break
            taken += 1
            size += len(line)
        return taken, size

    def _start(self, resource_type: str) -> dict:
        number = 1 + sum(1 for o in self.outputs if o["type"] == resource_type)
        output = {"type": resource_type, "name": f"{resource_type}.{number:03d}.ndjson", "count": 0, "bytes": 0}
        self.outputs.append(output)
        return output

    def _handle(self, name: str) -> BinaryIO:
        if self._open_name != name:
            self.sync()  # a rotated file's last lines count at the next checkpoint too
            self.close()
            self._open = (self.directory / name).open("ab")
            self._open_name = name
        assert self._open is not None
        return self._open

    def sync(self) -> None:
        """On disk before the checkpoint that counts these lines is recorded."""
        if self._open is not None:
            self._open.flush()
            os.fsync(self._open.fileno())

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = self._open_name = None

    def write_errors(self, lines: list[bytes]) -> None:
        (self.directory / ERROR_FILE).write_bytes(b"".join(lines))


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
