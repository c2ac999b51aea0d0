"""``python -m bench``: the façade against its floor, at one or more database sizes.

    python -m bench [--engine sqlite|postgresql|mariadb] [--sizes 1000,100000] [--duration 10]
                    [--rounds 3] [--connections 16] [--json FILE] [--quick] [--keep-database]

See bench/README.md for what is measured and how to read the output.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import data, legacy, report, wrk
from bench.run import Options, ParityError, run_size
from bench.servers import ROOT
from facade.config import load_settings
from legacy_adapters.sources.demo.generate import DEMO_SEED

QUICK_SIZE = 200


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark the FHIR façade against a hand-written floor server.")
    parser.add_argument(
        "--engine",
        choices=legacy.ENGINES,
        default="sqlite",
        help="the legacy database: the demo SQLite file (default), or the demo loaded into the PostgreSQL or MariaDB server "
        "(FHIR_FACADE_TEST_POSTGRES / FHIR_FACADE_TEST_MARIADB, else the local server)",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="keep the demo loaded into the server after the run, and reuse one a run kept before (default: drop it)",
    )
    parser.add_argument("--sizes", default="1000,100000", help="comma-separated patient counts (default 1000,100000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds per workload (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument(
        "--threads", type=int, default=None, help="gthread threads per worker, both servers (default: the façade's default)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load per server and workload (default 2)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="demo data seed")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--workloads", default="", help="comma-separated workload names to run (default: all)")
    parser.add_argument(
        "--audit-delivery",
        choices=("spool", "commit"),
        default="spool",
        help="the façade's audit delivery (default spool, as deployed by default)",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="measure the floor inside a minimal Flask app in the façade's place: the ratio no Flask app can beat",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"CI smoke run: {QUICK_SIZE} patients, 1 round, 1 s per run (never judges speed)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.duration, args.rounds, args.warmup = str(QUICK_SIZE), 1, 1, 0
    args.size_list = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if (
        not args.size_list
        or min(args.size_list) < 1
        or args.duration < 1
        or args.rounds < 1
        or args.connections < 1
        or (args.threads is not None and args.threads < 1)
    ):
        parser.error("sizes, duration, rounds, connections and threads must be positive")
    return args


def _wrk_version() -> str:
    done = subprocess.run([wrk.require_wrk(), "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "?"


def _code_version() -> dict:
    """The commit measured, and files changed since (other than bench/): results depend on them."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""

    changed = [
        line[3:]
        for line in git("status", "--porcelain").splitlines()
        if not line[3:].startswith(("bench/", "tests/contract/test_bench.py"))
    ]
    return {"commit": git("rev-parse", "--short", "HEAD") or "?", "uncommitted": changed}


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the servers' finally blocks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk.require_wrk()  # fail before generating anything
    try:
        legacy.check_service(args.engine)
    except legacy.Unavailable as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 4
    signal.signal(signal.SIGTERM, _terminate)
    workers = os.cpu_count() or 1
    opts = Options(
        args.duration,
        args.rounds,
        args.connections,
        args.warmup,
        workers,
        frozenset(w.strip() for w in args.workloads.split(",") if w.strip()),
        args.audit_delivery,
        args.threads,
        args.ceiling,
    )
    document = {
        "meta": {
            "sizes": args.size_list,
            "duration": args.duration,
            "rounds": args.rounds,
            "connections": args.connections,
            "warmup": args.warmup,
            "quick": args.quick,
            "engine": args.engine,
            "audit_delivery": args.audit_delivery,
            "subject": "Flask floor" if args.ceiling else "façade",  # what the "facade" figures measure
            "seed": args.seed,
            "workers": workers,
            "threads": args.threads or load_settings(environ={}).threads,
            "cpu_count": os.cpu_count(),
            "wrk": _wrk_version(),
            "python": platform.python_version(),
            "code": _code_version(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "sizes": [],
    }
    log_dir = data.DATA_DIR / "logs"
    try:
        for size in args.size_list:
            with legacy.database(args.engine, size, args.seed, keep=args.keep_database) as db:
                print(f"\n-- {size} patients ({db.label})", flush=True)
                runs = log_dir / (str(size) if args.engine == "sqlite" else f"{args.engine}-{size}")
                document["sizes"].append(run_size(size, db, opts, runs))
    except ParityError as exc:
        print(f"\nPARITY CHECK FAILED — the floor does not answer the same question:\n{exc}", file=sys.stderr)
        return 3
    print(report.results_table(document))
    print(report.scaling_table(report.scaling(document), document["meta"]["subject"]))
    if args.json:
        report.write_json(document, args.json)
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
