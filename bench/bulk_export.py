"""bulk_export: the ``$export`` engine against a hand-written floor writing the same NDJSON.

    python -m bench.bulk_export [--size 10000] [--rounds 2] [--page-size 1000]

The export is every Patient and every laboratory Observation (``_type=Patient,Observation``,
``_typeFilter=Observation?category=laboratory``), run by the server's own engine in this process
(the job in a state database, keyset pages through the mapping compiler, checkpoints, files) —
what a worker's export thread does, without the HTTP download. The floor is what a hand-written
exporter for this one schema could do: one streaming SQL query per type, the resources built by
bench/floor_fhir.py (the bench's floor server), orjson, one file per type. Both files must hold the
same lines (as sets: the orders differ), or the run stops. Figures: resources/s and MB/s per side
(best of the rounds), the ratio, and the memory of the exporting process: each round's export runs in
a fresh process, whose RSS is taken once it is a ready, idle worker (app built, mapping bound) and at
its peak, after the export.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import orjson

from bench import data
from bench import floor_fhir as fhir

NOT_DELETED = "p.del_flg != 'Y'"


def facade_export(db: Path, work: Path, page_size: int) -> tuple[float, dict[str, list[Path]], tuple[float, float]]:
    """Seconds, the files per type, and (idle, peak) max RSS in MB of this process."""
    from facade.access.grant import Access
    from facade.app import create_app
    from facade.config import Settings

    settings = Settings(
        demo_path=str(db),
        auth_mode="off",
        base_url="http://bench/fhir",
        state_url=f"sqlite:///{work}/state.sqlite",
        bulk_dir=str(work / "facade"),
        bulk_threads=0,
        bulk_page_size=page_size,
    )
    state = create_app(replace(settings)).extensions["fhir_facade"]
    try:
        state.prepare()
        # A serving worker binds the mapping to the tables once, at its readiness probe or first
        # request, before any export it runs: bind it here too, or the figure includes start-up.
        state.service.adapter.ready()
        from facade.gunicorn import tune_collector

        tune_collector()  # as a serving worker, whose export threads these are
        idle = _max_rss_mb()
        bulk = state.bulk
        pairs = [("_type", "Patient,Observation"), ("_typeFilter", "Observation?category=laboratory")]
        started = time.perf_counter()
        job = bulk.kick_off("system", pairs, Access.unrestricted(), "bench", lenient=False)
        bulk.runner.run_one(job.id)
        elapsed = time.perf_counter() - started
        peak = _max_rss_mb()
        finished = bulk.jobs.get(job.id)
        assert finished is not None and finished.status == "complete", finished
        files: dict[str, list[Path]] = {}
        for output in finished.outputs:  # a type's NDJSON may be rotated into several files
            files.setdefault(output["type"], []).append(bulk.root / job.id / output["name"])
        return elapsed, files, (idle, peak)
    finally:
        state.close()


def _max_rss_mb() -> float:
    """This process's peak RSS so far. Linux: VmHWM, which starts afresh in a new program, where
    ru_maxrss would carry the RSS of the process that spawned it."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _facade_export_alone(db: Path, work: Path, page_size: int) -> tuple[float, dict[str, list[Path]], tuple[float, float]]:
    """:func:`facade_export` in a process of its own, so its RSS is the export's alone."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(facade_export, db, work, page_size).result()


def floor_export(db: Path, work: Path) -> tuple[float, dict[str, Path]]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    work.mkdir(parents=True, exist_ok=True)
    queries = {
        "Patient": (
            f"SELECT {fhir.PATIENT_COLUMNS} FROM pt_master p LEFT JOIN pt_master s ON s.pt_seq = p.merged_to_seq WHERE {NOT_DELETED}",
            fhir.patient,
        ),
        "Observation": (
            f"SELECT {fhir.LAB_COLUMNS} FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq "
            f"LEFT JOIN lab_test_cd t ON t.test_cd = r.test_cd WHERE r.del_flg != 'Y' AND {NOT_DELETED}",
            fhir.lab,
        ),
    }
    started = time.perf_counter()
    files = {}
    for resource_type, (sql, build) in queries.items():
        path = files[resource_type] = work / f"{resource_type}.ndjson"
        with path.open("wb") as out:
            rows = connection.execute(sql)
            while batch := rows.fetchmany(1000):
                out.write(b"".join(orjson.dumps(build(row)) + b"\n" for row in batch))
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed, files


def _lines(path: Path) -> set[bytes]:
    return set(path.read_bytes().splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="demo patients (cached in bench/.data)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    db = data.ensure_database(args.size)
    best: dict[str, float] = {}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        for round_number in range(args.rounds):
            work = Path(tmp) / f"round{round_number}"
            facade_seconds, facade_files, (idle, peak) = _facade_export_alone(db, work, args.page_size)
            rss["idle"] = max(rss.get("idle", 0.0), idle)
            rss["peak"] = max(rss.get("peak", 0.0), peak)
            floor_seconds, floor_files = floor_export(db, work / "floor")
            if round_number == 0:
                for resource_type, path in floor_files.items():
                    if _lines(path) != set().union(*(_lines(part) for part in facade_files[resource_type])):
                        print(f"the floor's {resource_type} NDJSON differs from the façade's", file=sys.stderr)
                        return 3
                resources = sum(len(path.read_bytes().splitlines()) for path in floor_files.values())
                megabytes = sum(path.stat().st_size for path in floor_files.values()) / 1e6
            best["facade"] = min(best.get("facade", float("inf")), facade_seconds)
            best["floor"] = min(best.get("floor", float("inf")), floor_seconds)
    report = {
        "size": args.size,
        "resources": resources,
        "megabytes": round(megabytes, 1),
        "same_ndjson": True,
        **{f"{side}_resources_per_s": round(resources / seconds) for side, seconds in best.items()},
        **{f"{side}_mb_per_s": round(megabytes / seconds, 1) for side, seconds in best.items()},
        "ratio": round(best["floor"] / best["facade"], 2),
        "worker_idle_rss_mb": round(rss["idle"], 1),
        "worker_peak_rss_mb": round(rss["peak"], 1),
        "peak_over_idle": round(rss["peak"] / rss["idle"], 2),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
