"""CPU per request in process: the façade's WSGI app against the floor's, workload by workload.

    python -m bench.cpu [--size 1000] [--requests 1000] [--workloads patient_read,...] [--profile WORKLOAD]

The throughput benchmark (``python -m bench``) needs an idle machine; this one does not.
Both applications are called directly (no gunicorn, no sockets, no wrk), each request's
environ built beforehand, and ``time.process_time`` counts only this process's CPU, so
the figures hold on a busy machine and say how much of the gap is the application's
own work. The façade runs as a worker does: access control and the audit trail on, metrics
in prometheus-client's multiprocess files, the collector tuned as ``facade.gunicorn`` tunes
it. Each figure is the best of three runs.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import gc
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import orjson
from werkzeug.test import EnvironBuilder

from bench import data
from bench.floor import Floor
from bench.servers import ROOT, facade_command

BASE = "http://127.0.0.1:8080"
WSGI = Callable[[dict, Callable], Iterable[bytes]]


def facade_app(db: str, scratch: str) -> tuple[WSGI, str]:
    """The façade over the demo file, as ``fhir-facade serve`` configures it, and a token for it."""
    os.makedirs(f"{scratch}/metrics", exist_ok=True)
    os.environ.update(
        PROMETHEUS_MULTIPROC_DIR=f"{scratch}/metrics",  # as under gunicorn: each worker's metrics in files
        FHIR_FACADE_DEMO_PATH=db,
        FHIR_FACADE_STATE_URL=f"sqlite:///{scratch}/state.sqlite",
        FHIR_FACADE_AUDIT_DELIVERY="spool",
        FHIR_FACADE_BASE_URL=f"{BASE}/fhir",
        XDG_DATA_HOME=f"{scratch}/data",
    )
    minted = subprocess.run(
        [*facade_command(), "token", "--scope", "user/*.rs"],
        env={**os.environ, "FHIR_FACADE_TOKEN_LIFETIME": "3600"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    from prometheus_client import values

    from facade.app import create_app
    from facade.config import load_settings

    assert values.ValueClass.__name__ == "MmapedValue", "prometheus-client was imported before the directory was set"
    return create_app(load_settings()), minted.stdout.strip().splitlines()[-1]


def _environ(path: str, token: str | None) -> dict:
    url = urlsplit(path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return EnvironBuilder(path=url.path, query_string=url.query, base_url=BASE, headers=headers).get_environ()


def _call(app: WSGI, environ: dict) -> bytes:
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    payload = b"".join(body)
    getattr(body, "close", lambda: None)()
    if not statuses[0].startswith("200"):
        raise RuntimeError(f"{environ['PATH_INFO']}: {statuses[0]}")
    return payload


def _requests(workload: data.Workload, app: WSGI, token: str | None, count: int) -> list[dict]:
    """``count`` environs: the workload's URLs in turn, or (a walk) its pages followed by next links."""
    if workload.kind != "walk":
        return [_environ(workload.paths[i % len(workload.paths)], token) for i in range(count)]
    pages: list[str] = []
    url: str | None = workload.paths[0]
    while url and len(pages) < count:
        pages.append(url)
        links = orjson.loads(_call(app, _environ(url, token))).get("link", [])
        following = next((link["url"] for link in links if link["relation"] == "next"), None)
        url = following.removeprefix(BASE) if following else None
    return [_environ(pages[i % len(pages)], token) for i in range(count)]


def cpu_per_request(app: WSGI, environs: list[dict]) -> float:
    """Microseconds of this process's CPU per request."""
    started = time.process_time()
    for environ in environs:
        _call(app, environ)
    return (time.process_time() - started) / len(environs) * 1e6


def measure(workload: data.Workload, app: WSGI, token: str | None, count: int) -> float:
    _call(app, _requests(workload, app, token, 1)[0])  # warm: caches, statements, connections
    return min(cpu_per_request(app, _requests(workload, app, token, count)) for _ in range(3))


def profile(workload: data.Workload, app: WSGI, token: str, count: int, top: int = 30) -> None:
    environs = _requests(workload, app, token, count)
    _call(app, _requests(workload, app, token, 1)[0])  # warm, as measure() does
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [_call(app, environ) for environ in environs])
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="demo patients (default 1000)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per run (default 1000)")
    parser.add_argument("--workloads", help="comma-separated workload names (default: all)")
    parser.add_argument("--profile", metavar="WORKLOAD", help="print a cProfile of the façade on this workload instead")
    args = parser.parse_args()
    db = str(data.ensure_database(args.size))
    workloads = data.workloads(f"sqlite:///{db}")
    wanted = set(args.workloads.split(",")) if args.workloads else {w.name for w in workloads}
    scratch = tempfile.mkdtemp(prefix="bench-cpu-")
    atexit.register(shutil.rmtree, scratch, True)  # registered first, so it runs after the façade ships its audit spool
    facade, token = facade_app(db, scratch)
    floor = Floor({"path": db})
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)  # as facade.gunicorn.tune_collector does in a worker
    if args.profile:
        profile(next(w for w in workloads if w.name == args.profile), facade, token, args.requests)
        return
    print(f"CPU per request in process, {args.size:,} patients, best of 3 × {args.requests} requests")
    print(f"{'workload':<40} {'façade µs':>10} {'floor µs':>10} {'floor/façade':>13}")
    for workload in workloads:
        if workload.name not in wanted:
            continue
        ours = measure(workload, facade, token, args.requests)
        theirs = measure(workload, floor, None, args.requests)
        print(f"{workload.title:<40} {ours:>10.0f} {theirs:>10.0f} {theirs / ours:>13.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
