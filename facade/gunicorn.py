"""Running the façade under gunicorn, the production WSGI server.

The demo database is created here, in the master process, before any worker
starts, so workers never race to build it. Each worker builds its own app (and
its own connection pool) after the fork.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gunicorn.app.base import BaseApplication

from facade.config import Settings

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
        self.cfg.set("bind", f"{s.host}:{s.port}")
        self.cfg.set("workers", s.workers)
        self.cfg.set("threads", s.threads)
        # gthread even with one thread: it keeps connections alive between requests, where
        # gunicorn's sync worker closes each one.
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("keepalive", 5)
        self.cfg.set("timeout", 60)
        self.cfg.set("accesslog", None)  # URLs carry search values, which may be PHI
        self.cfg.set("proc_name", "fhir-facade")
        self.cfg.set("worker_exit", _worker_exit)

    def load(self):
        from facade.app import create_app

        return create_app(self.settings)


def _worker_exit(_server: object, _worker: object) -> None:
    """A worker stopping: ship or commit the audit records still pending before the process ends."""
    from facade.audit import spool, writer

    spool.close_all()
    writer.close_all()


def serve(settings: Settings) -> None:
    if settings.is_demo:
        ensure_demo_database(settings)
    log.info("serving FHIR at http://%s:%d/fhir (%d workers, pid %d)", settings.host, settings.port, settings.workers, os.getpid())
    FacadeServer(settings).run()
