"""One benchmark size: start both servers, check they answer the same, measure A B A B.

Before timing anything, a few URLs of every workload are fetched from both
servers and compared (resourceType, ids, number of entries, bytes): a floor
answering a different question would make the ratio meaningless, so a
mismatch stops the run.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import data, walk, wrk
from bench.legacy import LegacyDatabase
from bench.servers import Server, audit_state, facade_server, floor_server, running

PARITY_URLS = 3  # per workload


@dataclass(frozen=True)
class Options:
    duration: int
    rounds: int
    connections: int
    warmup: int
    workers: int
    only: frozenset[str] = frozenset()  # workload names to run; empty: all
    audit_delivery: str = "spool"  # the façade's [audit] audit_delivery
    threads: int | None = None  # gthread threads per worker, both servers; None: the façade's default
    ceiling: bool = False  # measure the floor inside a minimal Flask app in the façade's place


class ParityError(RuntimeError):
    pass


def _summary(status: int, body: bytes) -> dict:
    doc = orjson.loads(body)
    entries = doc.get("entry")
    ids = [e["resource"]["id"] for e in entries or []] if doc.get("resourceType") == "Bundle" else [doc.get("id")]
    return {"status": status, "resourceType": doc.get("resourceType"), "ids": ids, "entries": len(entries or []), "bytes": len(body)}


def _entries(body: bytes) -> object:
    """What the answer says: the resources and their search modes (fullUrls name each server's own port)."""
    doc = orjson.loads(body)
    if doc.get("resourceType") != "Bundle":
        return doc
    return [(entry.get("search"), entry.get("resource")) for entry in doc.get("entry", [])]


def check_parity(workload: data.Workload, facade: Server, floor: Server) -> dict:
    """Compare the two servers' answers on the first URLs of a workload."""
    samples = []
    for path in workload.paths[:PARITY_URLS]:
        (fs, fb), (ls, lb) = facade.get(path), floor.get(path)
        a, b = _summary(fs, fb), _summary(ls, lb)
        same = all(a[k] == b[k] for k in ("status", "resourceType", "ids", "entries"))
        if not same:
            raise ParityError(f"{workload.name}: the floor answers {path} differently:\n  façade {a}\n  floor  {b}")
        samples.append({"path": path, "facade": a, "floor": b, "same_json": _entries(fb) == _entries(lb)})
    facade_bytes = statistics.mean(s["facade"]["bytes"] for s in samples)
    floor_bytes = statistics.mean(s["floor"]["bytes"] for s in samples)
    return {
        "samples": samples,
        "bytes": {"facade": round(facade_bytes), "floor": round(floor_bytes)},
        "bytes_within_20pct": abs(floor_bytes - facade_bytes) <= 0.2 * facade_bytes,
    }


def _aggregate(rounds: list[dict]) -> dict:
    return {
        "rps": round(statistics.mean(r["rps"] for r in rounds), 1),
        "p50_ms": round(statistics.mean(r["p50_ms"] for r in rounds), 3),
        "p99_ms": round(statistics.mean(r["p99_ms"] for r in rounds), 3),
        "cpu_us": min((r["cpu_us"] for r in rounds if r.get("cpu_us")), default=None),  # workers' CPU per request, best round
        "rounds": rounds,
    }


def _spread(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def measure(workload: data.Workload, facade: Server, floor: Server, opts: Options, scratch: Path) -> tuple[dict, dict]:
    """A B A B rounds for one workload; returns (façade, floor) aggregates."""
    if workload.kind == "walk":
        first = workload.paths[0]

        def one(server: Server, seconds: float) -> dict:
            return walk.measure(server.port, first, seconds, server.headers)
    else:

        def one(server: Server, seconds: float) -> dict:
            return wrk.run(
                server.port,
                workload.paths,
                max(1, int(seconds)),
                opts.connections,
                scratch,
                spread=server.connections_per_worker,
                headers=server.headers,
            )

    def counted(server: Server, seconds: float) -> dict:
        """A round, and the CPU the server's workers spent per request in it (gunicorn included)."""
        before = server.workers_cpu_seconds()
        figures = one(server, seconds)
        done = figures.get("requests") or figures["rps"] * seconds
        figures["cpu_us"] = round(1e6 * (server.workers_cpu_seconds() - before) / done) if done else None
        return figures

    if opts.warmup:
        one(facade, opts.warmup)
        one(floor, opts.warmup)
    facade_rounds, floor_rounds = [], []
    for n in range(opts.rounds):
        facade_rounds.append(counted(facade, opts.duration))
        floor_rounds.append(counted(floor, opts.duration))
        print(
            f"    round {n + 1}/{opts.rounds}: {facade.name} {facade_rounds[-1]['rps']:>8.1f}/s   floor {floor_rounds[-1]['rps']:>8.1f}/s",
            flush=True,
        )
    return _aggregate(facade_rounds), _aggregate(floor_rounds)


def run_size(size: int, db: LegacyDatabase, opts: Options, log_dir: Path) -> dict:
    """Everything measured at one database size on one engine."""
    workloads = [w for w in data.workloads(db.url) if not opts.only or w.name in opts.only]
    if not workloads:
        raise SystemExit(f"no workload named {', '.join(sorted(opts.only))}")
    results = []
    facade = facade_server(db, opts.workers, log_dir, opts.audit_delivery, threads=opts.threads)
    floor = floor_server(db, opts.workers, log_dir, headers=facade.headers, threads=opts.threads)  # same bytes on the wire
    if opts.ceiling:  # what Flask alone costs: the floor inside Flask takes the façade's place
        facade = floor_server(db, opts.workers, log_dir, headers=facade.headers, threads=opts.threads, in_flask=True)
    with running(facade, floor, ready_path=workloads[0].paths[0]), tempfile.TemporaryDirectory() as tmp:
        print(
            f"  {facade.name} pid {facade.proc.pid} on :{facade.port}, floor pid {floor.proc.pid} on :{floor.port} "
            f"({opts.workers} workers each)",
            flush=True,
        )
        parity = {w.name: check_parity(w, facade, floor) for w in workloads}
        for workload in workloads:
            print(f"  {workload.title}  [{len(workload.paths)} URL(s)]", flush=True)
            facade_figs, floor_figs = measure(workload, facade, floor, opts, Path(tmp))
            ratios = [a["rps"] / b["rps"] for a, b in zip(facade_figs["rounds"], floor_figs["rounds"]) if b["rps"]]
            result = {
                "workload": workload.name,
                "title": workload.title,
                "engine": db.engine,
                "size": size,
                "unit": "pages/s" if workload.kind == "walk" else "requests/s",
                "facade": facade_figs,
                "floor": floor_figs,
                "ratio": _spread(ratios) if ratios else None,  # façade rps / floor rps, per round
                "p50_ratio": round(facade_figs["p50_ms"] / floor_figs["p50_ms"], 2) if floor_figs["p50_ms"] else None,
                # wrk's connections keep the floor saturated: this is the p99 target's figure
                "p99_ratio": round(facade_figs["p99_ms"] / floor_figs["p99_ms"], 2) if floor_figs["p99_ms"] else None,
                "bytes": parity[workload.name]["bytes"],
                "parity": parity[workload.name],
            }
            if workload.kind == "walk":
                a, b = facade_figs["rounds"][0]["walk"], floor_figs["rounds"][0]["walk"]
                result["same_walk"] = a == b
                if a != b:
                    raise ParityError(f"{workload.name}: the paging walks differ: façade {a}, floor {b}")
            results.append(result)
        rss = {"facade": facade.peak_rss_mb(), "floor": floor.peak_rss_mb()}
    if opts.ceiling:
        return {"size": size, "engine": db.engine, "database": db.label, "results": results, "rss_mb": rss, "audit": None}
    audit = audit_state(facade)  # after the façade stopped: every record of the run, chain checked
    print(
        f"  audit trail: {audit['records']} records, chain {'intact' if audit['intact'] else 'BROKEN: ' + '; '.join(audit['problems'])}",
        flush=True,
    )
    return {"size": size, "engine": db.engine, "database": db.label, "results": results, "rss_mb": rss, "audit": audit}
