"""Where the façade spends its time under load: py-spy on the gunicorn workers.

    python -m bench.profile [--size 100000] [--workload patient_read] [--seconds 15] [--top 10] [--svg FILE]

Starts the façade alone (as ``python -m bench`` does), drives one workload with
wrk, samples every worker with ``py-spy record`` and prints the hottest
functions: by own time (the frame on top of the stack) and by total time
(anywhere on the stack). Idle threads are not sampled. Needs py-spy
(``pip install py-spy``) and permission to ptrace the workers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench import data, legacy, wrk
from bench.servers import ROOT, facade_server, running

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?):\d+\)$")


def py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return str(Path(path).relative_to(ROOT)) if path.startswith(str(ROOT)) else path


_APP = "Flask.wsgi_app"  # samples with this frame are inside the application
_DRIVER = re.compile(r"do_execute|do_ping|fetchall|fetchone|fetchmany")  # leaf here = C code: sqlite3 + SQLite
_COMPONENTS = (
    ("facade/", "façade web/service/search (facade/)"),
    ("legacy_adapters/", "mapping engine + adapter (legacy_adapters/)"),
    ("sqlalchemy/", "SQLAlchemy (Python)"),
    ("flask", "Flask / flask-smorest"),
    ("werkzeug/", "Werkzeug"),
)


def _component(frame: str) -> str:
    if _DRIVER.search(frame.split(" (")[0]):
        return "DB driver + SQLite (C)"
    return next((label for marker, label in _COMPONENTS if f"({marker}" in frame or f"/{marker}" in frame), "other (stdlib, gunicorn, ...)")


def analyse(raw: str) -> dict:
    """py-spy's collapsed stacks → sample counts: own and inclusive per function inside the
    app, own time outside it (server, threads), and own time per component."""
    own, total, outside, components = Counter(), Counter(), Counter(), Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [
            f"{m['func']} ({_short(m['file'])})" for m in map(_FRAME.match, stack.split(";")) if m and not m.string.startswith("process ")
        ]
        if not frames:
            continue
        n = int(count)
        samples += n
        app = next((i for i, f in enumerate(frames) if f.startswith(_APP + " ")), None)
        if app is None:
            outside[frames[-1]] += n
            continue
        own[frames[-1]] += n
        components[_component(frames[-1])] += n
        for name in set(frames[app + 1 :]):
            total[name] += n
    return {"samples": samples, "own": own, "total": total, "outside": outside, "components": components}


def _table(title: str, counts: Counter, samples: int, top: int) -> str:
    lines = [title]
    for name, n in counts.most_common(top):
        lines.append(f"  {100 * n / samples:5.1f}%  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--workload", default="patient_read", help="a wrk workload name from python -m bench")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--svg", type=Path, help="also write a flame graph")
    args = parser.parse_args(argv)
    spy = py_spy()
    db = legacy.sqlite_database(args.size)
    workload = next((w for w in data.workloads(db.url) if w.name == args.workload and w.kind == "wrk"), None)
    if workload is None:
        parser.error(f"unknown wrk workload {args.workload!r}")
    facade = facade_server(db, workers=os.cpu_count() or 1, log_dir=data.DATA_DIR / "logs" / "profile")
    with running(facade, ready_path=workload.paths[0]), tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        wrk.run(facade.port, workload.paths, 2, args.connections, scratch, headers=facade.headers)  # warm-up
        load: dict = {}

        def drive() -> None:
            load.update(
                wrk.run(
                    facade.port,
                    workload.paths,
                    args.seconds + 3,
                    args.connections,
                    scratch,
                    spread=facade.connections_per_worker,
                    headers=facade.headers,
                )
            )

        driver = threading.Thread(target=drive)
        driver.start()
        time.sleep(1)  # past wrk's ramp
        raw = Path(tmp) / "stacks.txt"
        record = [
            spy,
            "record",
            "--pid",
            str(facade.proc.pid),
            "--subprocesses",
            "--nonblocking",
            "--full-filenames",
            "--rate",
            "200",
            "--duration",
            str(args.seconds),
        ]
        recorders = [subprocess.Popen([*record, "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
        if args.svg:
            recorders.append(subprocess.Popen([*record, "-o", str(args.svg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for recorder in recorders:
            _, err = recorder.communicate()
            if recorder.returncode:
                raise SystemExit(f"py-spy failed ({recorder.returncode}): {err.decode(errors='replace').strip()}")
        driver.join()
        found = analyse(raw.read_text())
    samples = found["samples"] or 1
    inside = sum(found["own"].values()) or 1
    print(
        f"façade, {workload.title}, {args.size} patients: {load.get('rps', 0):.0f} requests/s under wrk "
        f"({args.connections} connections); {found['samples']} busy-thread samples over {args.seconds} s, "
        f"{100 * inside / samples:.0f}% of them inside the Flask app"
    )
    print(
        "(wall-clock samples of non-idle threads: with several threads per worker, time waiting to\n"
        " re-take the GIL after I/O is charged to the frame that waits; percentages below are of the app's samples)"
    )
    print(_table("app time by component of the running frame:", found["components"], inside, 10))
    print(_table(f"top {args.top} functions by own time:", found["own"], inside, args.top))
    print(_table(f"top {args.top} functions by inclusive time (below Flask.wsgi_app):", found["total"], inside, args.top))
    print(_table("outside the app, top 5 by own time (% of all samples):", found["outside"], samples, 5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
