"""The paging walk: follow a search's ``next`` links to the last page, as a client would.

wrk cannot follow links, so this is driven from Python over one keep-alive
connection: it measures pages per second (and per-page latency) of a single
sequential client. The ids seen on a full walk are digested so the façade's and
the floor's walks can be compared entry for entry.
"""

from __future__ import annotations

import hashlib
import http.client
import statistics
import time
from urllib.parse import urlsplit

import orjson

MAX_PAGES = 20_000  # a runaway (cyclic) walk stops here


def _next_path(bundle: dict) -> str | None:
    for link in bundle.get("link", []):
        if link.get("relation") == "next":
            url = urlsplit(link["url"])
            return f"{url.path}?{url.query}"
    return None


def walk_once(conn: http.client.HTTPConnection, first: str, latencies: list[float], headers: dict[str, str] | None = None) -> dict:
    """One full walk; appends each page's latency (seconds) to ``latencies``."""
    path, pages, entries, digest = first, 0, 0, hashlib.sha256()
    while path and pages < MAX_PAGES:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"paging walk: HTTP {response.status} on page {pages + 1}: {body[:300]!r}")
        bundle = orjson.loads(body)
        pages += 1
        for entry in bundle.get("entry", []):
            entries += 1
            digest.update(entry["resource"]["id"].encode() + b"\n")
        path = _next_path(bundle)
    return {"pages": pages, "entries": entries, "ids_sha256": digest.hexdigest()[:16]}


def measure(port: int, first: str, seconds: float, headers: dict[str, str] | None = None) -> dict:
    """Full walks, repeated until ``seconds`` have passed (at least one walk always completes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies: list[float] = []
    walks = []
    started = time.perf_counter()
    try:
        while not walks or time.perf_counter() - started < seconds:
            walks.append(walk_once(conn, first, latencies, headers))
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "rps": round(len(latencies) / elapsed, 1),  # pages per second
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "walks": len(walks),
        "walk": walks[0],
    }
