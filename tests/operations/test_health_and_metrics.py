"""/healthz, /readyz and /metrics: what an operator's load balancer and monitoring call."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from legacy_adapters.engines import create_legacy_engine
from legacy_adapters.mapping.loader import load_mapping
from legacy_adapters.sql_adapter import SqlAdapter

BASE = "http://testserver/fhir"


def test_healthz_says_alive_without_a_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "alive"}


def test_readyz_checks_every_dependency(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ready"
    assert set(body["checks"]) == {"legacy_database", "state_database", "audit_shipping"}
    assert all(check["ok"] for check in body["checks"].values())


def test_readyz_is_503_naming_a_legacy_database_that_does_not_answer(demo_path, tmp_path):
    from facade.config import DEMO_MAPPING

    missing = create_legacy_engine(f"sqlite:///file:{tmp_path / 'gone.sqlite'}?mode=ro&uri=true")
    app = create_app(
        Settings(auth_mode="off", base_url=BASE, state_url=f"sqlite:///{tmp_path / 's.sqlite'}"),
        adapter=SqlAdapter(load_mapping(DEMO_MAPPING), missing),
    )
    response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert body["checks"]["legacy_database"]["ok"] is False and body["checks"]["state_database"]["ok"] is True
    assert body["checks"]["legacy_database"]["detail"] in ("UpstreamUnavailable", "MappingError")
    app.extensions["fhir_facade"].close()


def test_readyz_is_503_when_audit_records_wait_too_long(demo_path, tmp_path):
    app = create_app(
        Settings(auth_mode="off", demo_path=demo_path, base_url=BASE, state_url=f"sqlite:///{tmp_path / 's.sqlite'}", ready_audit_lag=1)
    )
    client = app.test_client()
    audit = app.extensions["fhir_facade"].audit
    audit.spool._interval = 3600  # the shipper is stuck
    assert client.get("/fhir/Patient?_count=1").status_code == 200
    audit.spool._waiting_since = time.monotonic() - 5
    body = client.get("/readyz").get_json()
    assert body["checks"]["audit_shipping"]["ok"] is False and "waited" in body["checks"]["audit_shipping"]["detail"]
    audit.flush()
    assert client.get("/readyz").status_code == 200
    app.extensions["fhir_facade"].close()


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{wanted}}} in the exposition")


def test_metrics_count_interactions_by_type_and_status_and_time_the_legacy_sql(client, raw_db):
    patient = raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' LIMIT 1").fetchone()[0]
    before = client.get("/metrics").get_data(as_text=True)
    searches_before = (
        _metric(before, "fhir_facade_requests_total", interaction="search", resource_type="Observation", status="200")
        if 'resource_type="Observation"' in before
        else 0.0
    )
    sql_before = _metric(before, "fhir_facade_legacy_sql_seconds_count")
    for _ in range(3):
        assert client.get(f"/fhir/Observation?patient={patient}&_count=5").status_code == 200
    assert client.get("/fhir/Patient/no-such-patient").status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        _metric(text, "fhir_facade_requests_total", interaction="search", resource_type="Observation", status="200") == searches_before + 3
    )
    assert _metric(text, "fhir_facade_requests_total", interaction="read", resource_type="Patient", status="404") >= 1
    assert _metric(text, "fhir_facade_legacy_sql_seconds_count") >= sql_before + 3
    assert _metric(text, "fhir_facade_request_seconds_count", interaction="search") >= 3
    assert patient not in text and "no-such-patient" not in text  # labels never carry ids or queries


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_operations_endpoints_are_not_audited(app, client, path):
    audit = app.extensions["fhir_facade"].audit
    audit.flush()
    with audit.engine.connect() as connection:
        before = connection.execute(sa.text("SELECT count(*) FROM audit_record")).scalar_one()
    assert client.get(path).status_code == 200
    audit.flush()
    with audit.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM audit_record")).scalar_one() == before


def _pair(registry):
    from prometheus_client import Counter, Gauge, Histogram

    return (
        Counter("t_requests", "r", ["kind"], registry=registry),
        Gauge("t_in_use", "u", registry=registry),
        Histogram("t_seconds", "s", ["kind"], buckets=(0.001, 0.005, 0.1), registry=registry),
        Histogram("t_sql_seconds", "q", buckets=(0.001, 0.005), registry=registry),
    )


def test_the_tally_publishes_what_the_metrics_would_have_counted():
    from prometheus_client import CollectorRegistry, generate_latest

    from facade.operations.metrics import Tally

    direct, tallied = CollectorRegistry(), CollectorRegistry()
    (requests, in_use, seconds, sql), (t_requests, t_in_use, t_seconds, t_sql) = _pair(direct), _pair(tallied)
    tally = Tally(interval=3600)  # published here, by hand
    for kind, value in [("read", 0.0004), ("read", 0.001), ("search", 0.005), ("search", 0.0051), ("read", 7.0), ("read", 0.1)]:
        requests.labels(kind).inc()
        tally.add(t_requests, (kind,))
        seconds.labels(kind).observe(value)
        tally.observe(t_seconds, value, (kind,))
        sql.observe(value / 2)
        tally.observe(t_sql, value / 2)
    in_use.inc()
    in_use.inc()
    in_use.dec()
    for amount in (1.0, 1.0, -1.0):
        tally.add(t_in_use, amount=amount)

    def exposed(registry) -> list[str]:  # without the creation times, which differ
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    assert exposed(tallied) != exposed(direct)  # nothing published yet
    tally.publish()
    assert exposed(tallied) == exposed(direct)
    tally.publish()  # nothing new: nothing added twice
    assert exposed(tallied) == exposed(direct)


def test_an_idle_process_publishes_its_tally_on_its_own():
    from prometheus_client import CollectorRegistry

    from facade.operations.metrics import Tally

    registry = CollectorRegistry()
    requests = _pair(registry)[0]
    Tally(interval=0.05).add(requests, ("read",), 3)
    deadline = time.monotonic() + 5
    while registry.get_sample_value("t_requests_total", {"kind": "read"}) != 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert registry.get_sample_value("t_requests_total", {"kind": "read"}) == 3


def test_legacy_connections_in_use_are_sampled_at_the_scrape(app, client):
    engine = app.extensions["fhir_facade"].adapter.engine
    with engine.connect(), engine.connect():  # two held, as by requests in flight
        held = _metric(client.get("/metrics").get_data(as_text=True), "fhir_facade_legacy_connections_in_use")
    assert held == 2
    assert _metric(client.get("/metrics").get_data(as_text=True), "fhir_facade_legacy_connections_in_use") == 0


def test_a_forked_worker_starts_a_tally_of_its_own():
    """gunicorn forks workers: a child must not wait on a lock the parent held at the fork, nor
    publish counts the parent made."""
    import os

    from prometheus_client import CollectorRegistry

    from facade.operations.metrics import Tally

    registry = CollectorRegistry()
    requests = _pair(registry)[0]
    tally = Tally(interval=3600)
    tally.sample = lambda: None
    tally.add(requests, ("read",))  # the parent's, never published by the child
    with tally._lock:  # held across the fork, as by a request thread of the parent
        child = os.fork()
        if child == 0:
            try:
                tally.add(requests, ("read",))
                tally.publish()
                counted = registry.get_sample_value("t_requests_total", {"kind": "read"}) == 1
                os._exit(0 if counted and tally.sample is not None else 1)  # the app's gauge sampler is kept
            finally:
                os._exit(2)
    deadline = time.monotonic() + 10
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if done[0] == 0:
        os.kill(child, 9)
        os.waitpid(child, 0)
        raise AssertionError("the child waited on the parent's lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_a_metric_that_cannot_be_written_does_not_stop_the_others(caplog):
    from prometheus_client import CollectorRegistry

    from facade.operations.metrics import Tally

    registry = CollectorRegistry()
    requests, in_use, seconds, _ = _pair(registry)
    tally = Tally(interval=3600)
    tally.add(requests, ("read", "extra label"))  # wrong label count: this one fails
    tally.add(requests, ("read",))
    tally.observe(seconds, 0.002, ("read",))
    sampled = []
    tally.sample = lambda: sampled.append(1) or in_use.set(7)
    tally.publish()
    assert registry.get_sample_value("t_requests_total", {"kind": "read"}) == 1
    assert registry.get_sample_value("t_seconds_count", {"kind": "read"}) == 1
    assert registry.get_sample_value("t_in_use") == 7 and sampled == [1]
    assert "could not be published" in caplog.text


def test_the_publisher_samples_the_gauges_of_an_idle_worker():
    from prometheus_client import CollectorRegistry

    from facade.operations.metrics import Tally

    registry = CollectorRegistry()
    requests, in_use, _, _ = _pair(registry)
    tally = Tally(interval=0.05)
    tally.sample = lambda: in_use.set(len(held))
    held = [1, 2]
    tally.add(requests, ("read",))  # the publisher starts with the first count
    deadline = time.monotonic() + 5
    while registry.get_sample_value("t_in_use") != 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    held.pop()  # no request comes; the gauge follows anyway
    while registry.get_sample_value("t_in_use") != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert registry.get_sample_value("t_in_use") == 1
