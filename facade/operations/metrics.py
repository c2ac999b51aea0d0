"""Prometheus metrics, one set per process, summed across gunicorn workers.

Under ``fhir-facade serve`` every worker writes its values to files in a directory the
master creates (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``), and a
scrape of any worker — or of the master's own metrics port — reads them all. Labels are
interaction names, resource types and status codes: never ids, queries or anything a
patient could be recognised by.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REQUESTS = Counter("fhir_facade_requests", "FHIR interactions answered", ["interaction", "resource_type", "status"])
LATENCY = Histogram(
    "fhir_facade_request_seconds",
    "Time to answer a FHIR interaction",
    ["interaction"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LEGACY_SQL = Histogram(
    "fhir_facade_legacy_sql_seconds",
    "Time the legacy database took per statement",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
)
LEGACY_CONNECTIONS = Gauge("fhir_facade_legacy_connections_in_use", "Legacy database connections checked out", multiprocess_mode="livesum")
AUDIT_UNSHIPPED = Gauge(
    "fhir_facade_audit_unshipped_bytes", "Audit records written, not yet in the hash chain", multiprocess_mode="livesum"
)
AUDIT_LAG = Gauge("fhir_facade_audit_lag_seconds", "How long the oldest unshipped audit record has waited", multiprocess_mode="livemax")
AUTH_FAILURES = Counter("fhir_facade_auth_failures", "Requests refused for their token (401) or scopes (403)", ["status"])


def exposition() -> tuple[bytes, str]:
    """The metrics of every worker (multiprocess mode) or of this process, in the text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def observe_legacy_engine(engine: object) -> None:
    """Time every statement and count checked-out connections of a legacy engine."""
    import time

    import sqlalchemy as sa

    assert isinstance(engine, sa.Engine)

    def before(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: Any) -> None:
        conn.info.setdefault("fhir_facade_started", []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: Any) -> None:
        started = conn.info.get("fhir_facade_started")
        if started:
            LEGACY_SQL.observe(time.perf_counter() - started.pop())

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    sa.event.listen(engine, "checkout", lambda *_: LEGACY_CONNECTIONS.inc())
    sa.event.listen(engine, "checkin", lambda *_: LEGACY_CONNECTIONS.dec())
