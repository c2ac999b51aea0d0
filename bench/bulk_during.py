"""bulk_during: the interactive API while Bulk exports run on the same server.

    python -m bench.bulk_during [--size 10000] [--duration 5] [--rounds 2] [--busy-share 1]

The façade is served as deployed (``fhir-facade serve``, one worker per core, access control and
the audit trail on). Patient read and the laboratory page are driven with wrk, alternately with
no export running and while a backend client keeps one system export of every Patient and
laboratory Observation under way (kicking off the next as soon as one completes). Figures: each
workload's requests/s both ways and their ratio (the target: at least 0.8), and how far the
exports got meanwhile (each round prints the running one's progress).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import data, legacy, wrk
from bench.servers import facade_server, mint_token, running

WORKLOADS = ("patient_read", "observation_search_lab")
EXPORT = "/fhir/$export?_type=Patient,Observation&_typeFilter=Observation%3Fcategory%3Dlaboratory"


class ExportLoop:
    """One export under way at all times, from a backend client with a system token."""

    def __init__(self, port: int, token: str):
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        self.stop = threading.Event()
        self.completed = 0
        self.progress = ""  # the running job's X-Progress when the loop stopped
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._guarded, name="bench-export-loop", daemon=True)

    def _request(self, method: str, url: str, **headers: str) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(url, method=method, headers={**self.headers, **headers})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as error:  # reported by __exit__, in the bench's thread
            self.error = error

    def _run(self) -> None:
        while not self.stop.is_set():
            status, headers, body = self._request("GET", self.base + EXPORT, Prefer="respond-async")
            if status != 202:
                raise RuntimeError(f"kick-off answered {status}: {body[:300]!r}")
            location = headers["Content-Location"]
            while True:
                status, headers, body = self._request("GET", location)
                if status == 200:
                    self.completed += 1
                    break
                if status not in (202, 429):
                    raise RuntimeError(f"status answered {status}: {body[:300]!r}")
                self.progress = headers.get("X-Progress", self.progress)
                if self.stop.wait(1.0):
                    self._request("DELETE", location)
                    return

    def __enter__(self) -> ExportLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        if self.error is not None:
            raise RuntimeError("the export loop failed") from self.error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_during", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000, help="demo patients (cached in bench/.data)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="runs without and with exports, alternated")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--busy-share", type=float, help="the server's [bulk] busy_share (default: its own)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    workers = os.cpu_count() or 1
    db = legacy.sqlite_database(args.size)
    workloads = {w.name: w for w in data.workloads(db.url) if w.name in WORKLOADS}
    figures: dict[str, dict[str, list[float]]] = {name: {"alone": [], "exporting": []} for name in WORKLOADS}
    completed = 0
    with tempfile.TemporaryDirectory(prefix="bench-during-") as tmp:
        facade = facade_server(db, workers, Path(tmp) / "logs")
        if args.busy_share is not None:
            facade.env["FHIR_FACADE_BULK_BUSY_SHARE"] = str(args.busy_share)
        system_token = mint_token(facade.env, scope="system/Patient.rs system/Observation.rs")
        with running(facade, ready_path=workloads["patient_read"].paths[0]):

            def load(name: str, seconds: int) -> dict:
                return wrk.run(
                    facade.port,
                    workloads[name].paths,
                    seconds,
                    args.connections,
                    Path(tmp),
                    spread=facade.connections_per_worker,
                    headers=facade.headers,
                )

            for name in WORKLOADS:  # warm-up
                load(name, 2)
            for n in range(args.rounds):
                for name in WORKLOADS:
                    alone = load(name, args.duration)
                    with ExportLoop(facade.port, system_token) as loop:
                        time.sleep(0.5)  # the first page is being built
                        exporting = load(name, args.duration)
                    completed += loop.completed
                    figures[name]["alone"].append(alone["rps"])
                    figures[name]["exporting"].append(exporting["rps"])
                    print(
                        f"  round {n + 1}/{args.rounds} {name}: alone {alone['rps']:.1f}/s, "
                        f"while exporting {exporting['rps']:.1f}/s ({loop.completed} exports done meanwhile, "
                        f"the running one at {loop.progress or 'its start'})",
                        flush=True,
                    )
    report = {
        "size": args.size,
        "workers": workers,
        "busy_share": args.busy_share,
        "workloads": {
            name: {
                "alone_rps": round(statistics.mean(f["alone"]), 1),
                "exporting_rps": round(statistics.mean(f["exporting"]), 1),
                "ratio": round(statistics.mean(f["exporting"]) / statistics.mean(f["alone"]), 2),
            }
            for name, f in figures.items()
        },
        "exports_completed": completed,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
