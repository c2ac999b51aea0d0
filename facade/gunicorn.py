"""Running the façade under gunicorn, the production WSGI server.

The demo database is created here, in the master process, before any worker
starts, so workers never race to build it. Each worker builds its own app (and
its own connection pool) after the fork. The master also owns what the workers
share on this host: the directory their metrics are summed from, and the metrics
port when an operator asks for one.
"""

from __future__ import annotations

import atexit
import errno
import gc
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import ThreadWorker

from facade.config import Settings, data_home

log = logging.getLogger("facade.gunicorn")


def ensure_demo_database(settings: Settings) -> None:
    """Generate the embedded demo database on first run (a few seconds)."""
    path = Path(settings.demo_path)
    if path.exists():
        return
    from legacy_adapters.sources.demo.generate import generate

    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("creating the demo legacy database at %s (%d patients)", path, settings.demo_patients)
    counts = generate(str(path), patients=settings.demo_patients)
    log.info("demo database ready: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))


class FacadeServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        host = s.bind_host
        self.cfg.set("bind", f"[{host}]:{s.port}" if ":" in host else f"{host}:{s.port}")
        self.cfg.set("workers", s.workers)
        self.cfg.set("threads", s.threads)
        # gthread even with one thread: it keeps connections alive between requests, where
        # gunicorn's sync worker closes each one. Ours answers what gunicorn itself refuses.
        self.cfg.set("worker_class", FacadeWorker)
        self.cfg.set("limit_request_line", 8190)  # gunicorn's maximum: GET searches of about 8 KB
        # gunicorn's control socket has one default path per user: a second instance on the host
        # would take it over and unlink it on exit. Nothing here uses it.
        self.cfg.set("control_socket_disable", True)
        self.cfg.set("keepalive", 5)
        self.cfg.set("timeout", 60)
        self.cfg.set("accesslog", None)  # URLs carry search values, which may be PHI
        self.cfg.set("proc_name", "fhir-facade")
        self.cfg.set("worker_exit", _worker_exit)
        self.cfg.set("child_exit", _child_exit)
        if s.metrics and s.metrics_port:
            self.cfg.set("when_ready", _metrics_server(s.host, s.metrics_port))
        if s.log_format == "json":
            self.cfg.set("logconfig_dict", _json_logging())

    def load(self):
        from facade.app import create_app

        return create_app(self.settings)


# What gunicorn refuses before the application sees the request: (status, reason, issue code, words).
_REFUSALS: list[tuple[type[Exception], int, str, str, str]] = [
    (http_errors.InvalidResponseHeader, 500, "Internal Server Error", "exception", "Internal server error"),
    (http_errors.InvalidResponseHeaderName, 500, "Internal Server Error", "exception", "Internal server error"),
    (http_errors.LimitRequestLine, 414, "URI Too Long", "too-long", "The request line is too long; send long searches as POST _search"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "too-long", "Too many or too large request headers"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "not-supported", "Unsupported Transfer-Encoding"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "not-supported", "Unsupported Expect header"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden", "Request forbidden"),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error", "exception", "Server configuration problem"),
    (http_errors.ParseException, 400, "Bad Request", "invalid", "The request is not valid HTTP/1.1"),
]


class FacadeWorker(ThreadWorker):
    """gunicorn's threaded worker, but what gunicorn refuses itself (a request line too long or
    not valid, too many headers…) is answered with an OperationOutcome, and logged by kind only:
    gunicorn's own message repeats the request line, query string and all, which may be PHI."""

    def load_wsgi(self) -> None:
        super().load_wsgi()
        tune_collector()

    def handle_error(self, req, client, addr, exc):  # gunicorn's signature
        ip = (addr or ("",))[0]
        refusal = next((r for r in _REFUSALS if isinstance(exc, r[0])), None)
        if refusal is None:
            self.log.exception("Error handling request (%s)", type(exc).__name__)
            status, reason, code, words = 500, "Internal Server Error", "exception", "Internal server error"
        else:
            _, status, reason, code, words = refusal
            self.log.warning("Invalid request from ip=%s: %s (%d)", ip, type(exc).__name__, status)
        from facade.errors import operation_outcome

        body = orjson.dumps(operation_outcome("fatal" if status >= 500 else "error", code, words))
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/fhir+json; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            write_nonblock(client, head.encode("latin-1") + body)
        except OSError:
            self.log.debug("could not send the error answer")


def tune_collector() -> None:
    """For a process that serves or exports, once its app is built.

    What the app holds for the process's life (modules, the bound mapping, plans: ~200k objects)
    leaves the collector's sight, so a full collection walks only what requests made (with them it
    took ~200 ms, a pause every request in flight would wait out). And the collector runs after
    10,000 new container objects rather than 700: a search page or an export page is thousands of
    dicts that live until it is written, and collecting every 700 promoted them into the older
    generations, walked again and again (measured with ``python -m bench``: laboratory pages 880/s
    at 700, 1,084/s at 10,000, 1,170/s at 50,000, where peak RSS grew from 109 to 146 MiB).
    Reference counting frees everything but cycles at once.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)


def _worker_exit(_server: object, _worker: object) -> None:
    """A worker stopping: ship or commit the audit records still pending before the process ends,
    and publish its last second of metrics."""
    from facade.audit import spool, writer
    from facade.operations import metrics

    spool.close_all()
    writer.close_all()
    metrics.TALLY.publish()


def _child_exit(_server: object, worker: object) -> None:
    """A worker has ended: its gauges no longer count (prometheus-client's multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(getattr(worker, "pid"))  # noqa: B009 - gunicorn's Worker is untyped


def _metrics_server(host: str, port: int) -> Callable[[object], None]:
    """gunicorn's when_ready hook: the master serves every worker's metrics on their own port."""

    def when_ready(_server: object) -> None:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, addr=host, registry=registry)
        log.info("metrics at http://%s:%d/metrics", host, port)

    return when_ready


def _json_logging() -> dict:
    """gunicorn's own loggers in the same JSON lines as the application's."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "facade.operations.logs.JsonFormatter"}},
        "filters": {"request_id": {"()": "facade.operations.logs.RequestIdFilter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False, "qualname": "gunicorn.error"},
            "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False, "qualname": "gunicorn.access"},
        },
    }


class PortInUse(RuntimeError):
    pass


def check_port(host: str, port: int) -> None:
    """Fail at once, in one line, when the port is taken (gunicorn would retry for seconds, then exit)."""
    host = host.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is already in use: choose another with --port (or [server] port)") from None
            raise


def _metrics_directory(settings: Settings) -> Path:
    """This instance's own directory for its workers' metric files (an operator's
    ``PROMETHEUS_MULTIPROC_DIR`` when set), removed when the server stops."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        return Path(given)
    parent = data_home() / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f"{settings.port}-", dir=parent))
    atexit.register(shutil.rmtree, directory, True)
    return directory


def serve(settings: Settings) -> None:
    check_port(settings.host, settings.port)
    if settings.metrics_port:
        check_port(settings.host, settings.metrics_port)
    if settings.is_demo:
        ensure_demo_database(settings)
    if settings.metrics:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_directory(settings))  # before anything imports the metrics
    from facade.app import preflight  # imports the metrics: after their directory is set

    preflight(settings)
    base = settings.public_base_url
    log.info("serving FHIR at %s (%d workers, pid %d)", base, settings.workers, os.getpid())
    if settings.auth_mode == "builtin":
        log.info("every FHIR request needs an access token; apps get one from %s/auth/token", base)
        if settings.is_demo:
            # The flag only when the identity is not the one a bare command derives.
            identity = "" if base == Settings().public_base_url else f" --base-url {base}"
            log.info("for the demo, mint one with:  fhir-facade token --scope 'user/*.rs'%s", identity)
    if settings.is_demo:
        from legacy_adapters.engines import create_legacy_engine, sqlite_url
        from legacy_adapters.sources.demo.showcase import showcase_patient

        engine = create_legacy_engine(sqlite_url(settings.demo_path))
        try:
            patient = showcase_patient(engine)
        finally:
            engine.dispose()
        if patient:
            log.info("a demo patient with data of every kind: %s/Patient/%s", base, patient)
    FacadeServer(settings).run()
