"""The façade's lab page with and without gzip: bytes on the wire and requests/s.

    python -m bench.compression [--size 1000] [--duration 5] [--rounds 2] [--connections 16]

Serves the demo as deployed (``fhir-facade serve``, a bearer token, the audit trail on), then
drives the laboratory-results page of the workloads (50 Observations) with wrk, alternating
plain and ``Accept-Encoding: gzip`` rounds; bytes per response are read from one response of each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
from pathlib import Path

from bench import data, legacy, wrk
from bench.servers import HOST, facade_server, running


def _bytes(port: int, path: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status}")
        return len(body)
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compression", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    wrk.require_wrk()
    db = legacy.sqlite_database(args.size)
    [lab] = [w for w in data.workloads(db.url) if w.name == "observation_search_lab"]
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="fhir-facade-bench-gzip-") as tmp:
        facade = facade_server(db, workers, Path(tmp) / "logs")
        with running(facade, ready_path=lab.paths[0]):
            variants = {"plain": dict(facade.headers), "gzip": {**facade.headers, "Accept-Encoding": "gzip"}}
            report: dict = {"size": args.size, "workload": lab.title, "workers": workers, "connections": args.connections}
            for name, headers in variants.items():
                report[name] = {"bytes_per_response": _bytes(facade.port, lab.paths[0], headers), "rps": []}
            for _ in range(args.rounds):
                for name, headers in variants.items():
                    figures = wrk.run(
                        facade.port,
                        lab.paths,
                        args.duration,
                        args.connections,
                        Path(tmp),
                        headers=headers,
                        spread=facade.connections_per_worker,
                    )
                    report[name]["rps"].append(round(figures["rps"]))
    for name in variants:
        report[name]["mean_rps"] = round(sum(report[name]["rps"]) / len(report[name]["rps"]))
    report["bytes_ratio"] = round(report["gzip"]["bytes_per_response"] / report["plain"]["bytes_per_response"], 3)
    report["rps_ratio"] = round(report["gzip"]["mean_rps"] / report["plain"]["mean_rps"], 3)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
