"""For operators: ``/healthz`` (alive), ``/readyz`` (ready to serve and audit), ``/metrics``
(Prometheus), and an ``X-Request-ID`` on every request and log line.

All three endpoints sit outside ``/fhir`` and take no token: a load balancer or a monitoring
system calls them, and an operator can keep them off the public network at the proxy (or
serve metrics on their own port, ``[operations] metrics_port``). They say nothing about
patients: checks name what is wrong, metrics count interactions by type and status.
"""

from __future__ import annotations

import functools
import time
from contextvars import Token

import orjson
from flask import Flask, Response, g, request

from facade.operations import logs, metrics
from facade.operations.health import Check, NotReady, run_checks
from facade.web.state import FacadeState, facade_state
from legacy_adapters.protocol import ReadinessSource


def register_operations(app: Flask, state: FacadeState) -> None:
    adapter_engine = getattr(state.adapter, "engine", None)
    if state.settings.metrics:
        if adapter_engine is not None:
            metrics.observe_legacy_engine(adapter_engine)
        # This worker's gauges (audit backlog, connections in use), sampled at each publish.
        metrics.TALLY.sample = functools.partial(metrics.sample_gauges, state.audit, adapter_engine)

    @app.before_request
    def _begin() -> None:
        g.request_started = time.perf_counter()
        g.request_id = logs.accepted_request_id(request.headers.get("X-Request-ID"))
        g.request_id_token = logs.request_id.set(g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id") or ""
        interaction = g.get("interaction")
        if interaction is not None and state.settings.metrics:
            tally = metrics.TALLY
            tally.add(metrics.REQUESTS, (interaction.name, interaction.resource_type, str(response.status_code)))
            tally.observe(metrics.LATENCY, time.perf_counter() - g.request_started, (interaction.name,))
            if response.status_code in (401, 403):
                tally.add(metrics.AUTH_FAILURES, (str(response.status_code),))
        return response

    @app.teardown_request
    def _forget(_error: BaseException | None) -> None:
        token: Token | None = g.pop("request_id_token", None)
        if token is not None:
            logs.request_id.reset(token)

    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])
    if state.settings.metrics and not state.settings.metrics_port:
        app.add_url_rule("/metrics", "metrics", metrics_endpoint, methods=["GET"])


def healthz() -> Response:
    """The process answers HTTP."""
    return _json({"status": "alive"}, 200)


def readyz() -> Response:
    """Every dependency answers: 200, or 503 naming what is not ready."""
    results = run_checks(_checks(facade_state()))
    ready = all(result.ok for result in results)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {r.name: {"ok": r.ok, "detail": r.detail, "seconds": r.seconds} for r in results},
    }
    return _json(body, 200 if ready else 503, {} if ready else {"Retry-After": "5"})


def metrics_endpoint() -> Response:
    state = facade_state()
    metrics.TALLY.publish()  # this worker's latest counts; other workers' are at most a second old
    metrics.sample_gauges(state.audit, getattr(state.adapter, "engine", None))  # this app's gauges, as of the scrape
    body, content_type = metrics.exposition()
    return Response(body, status=200, content_type=content_type)


def _checks(state: FacadeState) -> dict[str, Check]:
    adapter = state.adapter

    def legacy() -> None:
        if isinstance(adapter, ReadinessSource):
            adapter.ready()

    def audit_current() -> None:
        lag = state.audit.lag()
        if lag > state.settings.ready_audit_lag:
            raise NotReady(f"audit records have waited {lag:.0f} s to reach the chain (limit {state.settings.ready_audit_lag} s)")

    def state_database() -> None:
        state.prepare()  # its tables exist (created now if this worker has served nothing yet)
        state.audit.ping()

    return {"legacy_database": legacy, "state_database": state_database, "audit_shipping": audit_current}


def _json(body: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response
