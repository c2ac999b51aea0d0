"""Prometheus metrics, one set per process, summed across gunicorn workers.

Under ``fhir-facade serve`` every worker writes its values to files in a directory the
master creates (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``), and a
scrape of any worker — or of the master's own metrics port — reads them all. Labels are
interaction names, resource types and status codes: never ids, queries or anything a
patient could be recognised by.

Requests do not write those files themselves: each value changed there is a lock, a pid check
and a write into a mapped file, and a Patient read changed seven (about 75 µs of its CPU). They
add to the process's :data:`TALLY`, which a thread of the process publishes once a second (and
a scrape of this process at once): a scrape sees another worker's counts at most a second late.
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
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


log = logging.getLogger("facade.metrics")

PUBLISH_SECONDS = 1.0


class Tally:
    """Counts, gauge changes and observations made since the last publish, as plain sums."""

    def __init__(self, interval: float = PUBLISH_SECONDS):
        self._interval = interval
        self.sample: Callable[[], None] | None = None  # gauges read at each publish (set by the app)
        self._forked()
        after_fork = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) is not None and method())

    def _forked(self) -> None:
        """Fresh state, in a new process too: its own publisher, and never a lock held by a
        thread that did not come across the fork."""
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()  # one publish at a time: a worker's last waits for one under way
        self._amounts: dict[tuple[Any, tuple[str, ...]], float] = {}  # counters and gauges: (metric, labels) -> change
        self._observed: dict[tuple[Histogram, tuple[str, ...]], list[float]] = {}  # -> [per-bucket counts..., sum]
        self._publishing = False

    def add(self, metric: Counter | Gauge, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        key = (metric, labels)
        with self._lock:
            self._amounts[key] = self._amounts.get(key, 0.0) + amount
        self._ensure_publisher()

    def observe(self, histogram: Histogram, seconds: float, labels: tuple[str, ...] = ()) -> None:
        key = (histogram, labels)
        bounds = histogram._upper_bounds  # private: the bucket Histogram.observe would pick
        with self._lock:
            sums = self._observed.get(key)
            if sums is None:
                sums = self._observed[key] = [0.0] * (len(bounds) + 1)
            sums[bisect.bisect_left(bounds, seconds)] += 1
            sums[-1] += seconds
        self._ensure_publisher()

    def publish(self) -> None:
        """Sample the gauges and write the sums into the metrics (the multiprocess files under
        gunicorn). A metric that cannot be written is logged and skipped, not the others."""
        with self._publish_lock:
            with self._lock:
                amounts, observed = self._amounts, self._observed
                self._amounts, self._observed = {}, {}
            sample = self.sample
            if sample is not None:
                _logged(sample)
            for (metric, labels), amount in amounts.items():
                if amount:
                    _logged(functools.partial(_inc, metric, labels, amount))
            for (histogram, labels), sums in observed.items():
                _logged(functools.partial(_observe_many, histogram, labels, sums))

    def _ensure_publisher(self) -> None:
        if self._publishing:
            return
        with self._lock:  # one thread per process
            if self._publishing:
                return
            self._publishing = True
        threading.Thread(target=self._run, name="metrics-publisher", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            _logged(self.publish)


def _inc(metric: Counter | Gauge, labels: tuple[str, ...], amount: float) -> None:
    (metric.labels(*labels) if labels else metric).inc(amount)


def _observe_many(histogram: Histogram, labels: tuple[str, ...], sums: list[float]) -> None:
    child = histogram.labels(*labels) if labels else histogram
    for bucket, count in zip(child._buckets, sums, strict=False):  # private: several observations at once
        if count:
            bucket.inc(count)
    child._sum.inc(sums[-1])


def _logged(step: Callable[[], object]) -> None:
    try:
        step()
    except Exception as error:  # noqa: BLE001 - metrics never stop the publisher (or a scrape)
        log.warning("a metric could not be published (%s)", type(error).__name__)


TALLY = Tally()


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
    """Time every statement of a legacy engine."""
    import sqlalchemy as sa

    assert isinstance(engine, sa.Engine)
    started = threading.local()  # a thread runs one statement at a time

    def before(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: Any) -> None:
        started.at = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: Any) -> None:
        at = getattr(started, "at", None)
        if at is not None:
            started.at = None
            TALLY.observe(LEGACY_SQL, time.perf_counter() - at)

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    # Connections in use are sampled with the other gauges (sample_gauges), not counted at each
    # checkout and return: two pool events a request cost more than the rest of the metrics.


def sample_gauges(audit: Any, engine: Any) -> None:
    """This worker's audit backlog and legacy connections in use, as of now."""
    AUDIT_UNSHIPPED.set(audit.unshipped_bytes())
    AUDIT_LAG.set(audit.lag())
    checked_out = getattr(getattr(engine, "pool", None), "checkedout", None)
    if checked_out is not None:
        LEGACY_CONNECTIONS.set(checked_out())
