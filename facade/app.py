"""Application factory: settings in, a WSGI app serving FHIR under /fhir out.

Building the app reads the mapping and creates the state database's tables; it does not
touch the legacy database (bound on first use), so the server starts, and says what it
serves, while the legacy system is still down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask_smorest import Api

from facade import __version__
from facade.access.tokens import KeyProvider
from facade.audit.search import AuditEventAdapter
from facade.audit.store import AuditStore
from facade.bulk.engine import ExportEngine
from facade.bulk.exports import BulkExports
from facade.bulk.jobs import JobStore
from facade.bulk.pacing import Pacer
from facade.bulk.runner import ExportRunner
from facade.config import Settings
from facade.core.service import FhirService
from facade.core.terminology import TerminologyService
from facade.errors import UpstreamUnavailable
from facade.sandbox.export import SandboxExports
from facade.sandbox.export import shaper as export_shaper
from facade.sandbox.keys import SandboxKey, load_sandbox_key
from facade.sandbox.policy import load_policy
from facade.sandbox.service import SandboxService
from facade.smart.discovery import rest_security
from facade.smart.server import Smart
from facade.state import StateStore
from facade.web import openapi_docs
from facade.web import smart as smart_endpoints
from facade.web.audit_hook import audit_response, audit_token_events
from facade.web.auth import build_authenticator
from facade.web.bodies import frame_chunked_body
from facade.web.bulk_routes import make_bulk_blueprint
from facade.web.compression import compress
from facade.web.conditional import conditional
from facade.web.cors import register_cors
from facade.web.error_handlers import register_error_handlers
from facade.web.operations import register_operations
from facade.web.routes import make_blueprint
from facade.web.sandbox_routes import blueprint as sandbox_blueprint
from facade.web.smart.oauth import OAuthServer
from facade.web.state import EXTENSION, FacadeState, facade_state
from facade.web.terminology_routes import make_terminology_blueprint
from legacy_adapters.engines import create_legacy_engine, sqlite_url
from legacy_adapters.mapping.loader import load_mapping
from legacy_adapters.protocol import LegacyAdapter, TerminologySource
from legacy_adapters.sql_adapter import SqlAdapter
from terminology.registry import Terminology


def build_adapter(settings: Settings) -> SqlAdapter:
    mapping = load_mapping(settings.mapping)
    url = settings.database_url or sqlite_url(settings.demo_path)
    engine = create_legacy_engine(
        url, pool_size=settings.pool_size, statement_timeout_ms=settings.statement_timeout * 1000, network_timeout=settings.network_timeout
    )
    return SqlAdapter(mapping, engine)


def preflight(settings: Settings) -> None:
    """Load the mapping and bind it to the legacy database, as ``fhir-facade mapping check`` does,
    before any worker starts: a mapping mistake stops the server with every problem and its
    ``file:line:column`` (MappingError). A database that does not answer yet is no reason to
    stay down: workers bind on first use. The sandbox's policy is read too (PolicyError, with its
    ``file:line:column``)."""
    if settings.sandbox_enabled:
        load_policy(settings.sandbox_policy)
    adapter = build_adapter(settings)
    try:
        adapter.bound()
    except UpstreamUnavailable:
        logging.getLogger(__name__).warning("the legacy database does not answer yet; the mapping is bound when it does")
    finally:
        adapter.engine.dispose()


class FacadeFlask(Flask):
    """Flask, deciding once per function whether it is a coroutine: ``ensure_sync`` inspects the
    code flags of every hook and view on every request (seven calls on a read)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable, Callable] = {}

    def ensure_sync(self, func: Callable) -> Callable:
        synced = self._synced.get(func)
        if synced is None:
            synced = super().ensure_sync(func)
            if len(self._synced) < 1000:  # hooks and views, not functions made per request
                self._synced[func] = synced
        return synced


def create_app(settings: Settings | None = None, adapter: LegacyAdapter | None = None) -> Flask:
    settings = settings or Settings()
    adapter = adapter or build_adapter(settings)
    app = FacadeFlask("fhir_facade")
    app.config.update(
        API_TITLE="fhir-facade",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/fhir",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    state_store = StateStore(
        settings.state_database_url, statement_timeout=settings.state_statement_timeout, network_timeout=settings.network_timeout
    )
    audit = AuditStore(state_store.engine, delivery=settings.audit_delivery, spool_dir=settings.audit_spool_dir)
    builtin = settings.auth_mode == "builtin"
    source = adapter if isinstance(adapter, TerminologySource) else None
    terminology = source.terminology() if source is not None else None
    service = FhirService(
        adapter,
        records=AuditEventAdapter(audit),
        default_count=settings.default_count,
        max_count=settings.max_count,
        security=rest_security if builtin else None,
        terminology=terminology is not None,
        bulk=True,
    )
    smart = Smart(settings, state_store) if builtin else None
    sandbox = build_sandbox(settings, service) if settings.sandbox_enabled else None
    state = FacadeState(
        settings=settings,
        service=service,
        state_store=state_store,
        audit=audit,
        auth=build_authenticator(settings, service.catalogues.__getitem__, _jwks_of(smart), state_store.engine),
        terminology=_terminology_service(source, terminology),
        smart=smart,
        oauth=OAuthServer(smart) if smart is not None else None,
        bulk=build_bulk(settings, service, state_store, sandbox),
        sandbox=sandbox,
    )
    if sandbox is not None and state.bulk is not None:
        state.sandbox_exports = SandboxExports(state.bulk, sandbox)
    if sandbox is not None:  # its own audience: identified tokens are refused there, its tokens here
        state.sandbox_auth = build_authenticator(
            settings, sandbox.inner.catalogues.__getitem__, _jwks_of(smart), state_store.engine, audiences=settings.sandbox_base_urls
        )
    app.extensions[EXTENSION] = state
    state.on_close(state_store.dispose)
    if state.bulk is not None:
        state.on_close(state.bulk.runner.stop)
    state.on_close(audit.close)
    if smart is not None:  # token events join the audit chain
        state.on_close(smart.events.subscribe(audit_token_events(audit)))

    api = Api(app, spec_kwargs={"info": {"description": "FHIR R4 façade over a legacy EHR database"}})
    openapi_docs.register_schemas(api.spec)
    openapi_docs.register_converters(app, api)
    api.register_blueprint(make_blueprint(service))
    api.register_blueprint(make_bulk_blueprint())
    if state.terminology is not None:
        api.register_blueprint(make_terminology_blueprint())
    if smart is not None:
        app.register_blueprint(smart_endpoints.blueprint())
    if sandbox is not None:
        api.register_blueprint(sandbox_blueprint(settings.sandbox_path))
    # Every state table (tokens, revocations, the audit trail) is created once, before the first
    # request is served; building the app touches no database, so it starts while one is down.
    app.before_request(frame_chunked_body)  # first: nothing may read a body before it is framed
    app.before_request(_prepare_state)
    register_error_handlers(app)
    # After-request hooks run last-registered first: 304 and gzip shape the response, the audit
    # hook records it (or withholds it), the operations hook counts what leaves and names it
    # (X-Request-ID), CORS labels it.
    register_cors(app)
    register_operations(app, state)
    app.after_request(audit_response)
    app.after_request(compress)
    app.after_request(conditional)
    return app


def build_bulk(settings: Settings, service: FhirService, state_store: StateStore, sandbox: SandboxService | None = None) -> BulkExports:
    """The export service: jobs in the state database, read through the REST search path, from
    ``[bulk] database_url`` (a read-only replica) when it is set. The sandbox's jobs are written
    through its policy (:func:`facade.sandbox.export.shaper`)."""
    exporter = service
    if settings.bulk_database_url:
        replica = SqlAdapter(
            load_mapping(settings.mapping), create_legacy_engine(settings.bulk_database_url, pool_size=max(1, settings.bulk_threads))
        )
        exporter = FhirService(replica, default_count=settings.default_count, max_count=settings.max_count)
    pacer = Pacer(settings.bulk_busy_share)
    engine = ExportEngine(
        exporter.query_narrowed,
        {t: c for t, c in service.catalogues.items() if t in exporter.types},
        exporter.group_members,
        page_size=settings.bulk_page_size,
        max_bytes=settings.bulk_file_bytes,
        checkpoint_seconds=settings.bulk_checkpoint_seconds,
        shaper=export_shaper(sandbox),
        pace=pacer.after_page,
    )
    root = Path(settings.bulk_directory)
    jobs = JobStore(state_store.engine, expiry=settings.bulk_expiry)
    runner = ExportRunner(jobs, engine, root, settings.bulk_threads)
    return BulkExports(jobs, engine, runner, root, jobs_per_client=settings.bulk_jobs_per_client, pacer=pacer)


def build_sandbox(settings: Settings, service: FhirService) -> SandboxService:
    """The de-identified API over the same service: its policy is read (and checked) now, its
    key on first use."""

    def key() -> SandboxKey:
        return load_sandbox_key(secret_hex=settings.sandbox_key, path=settings.sandbox_key_file, generate=settings.sandbox_key_path is None)

    # Tokens come from the one authorization server, under the identified API's base URL.
    security = (lambda _base: rest_security(settings.public_base_url)) if settings.auth_mode == "builtin" else None
    return SandboxService(service, load_policy(settings.sandbox_policy), key, small_cell=settings.sandbox_small_cell, security=security)


def _prepare_state() -> None:
    """Before a request that may need the state database (not the liveness and metrics probes)."""
    if request.endpoint not in ("healthz", "readyz", "metrics"):
        state = facade_state()
        state.prepare()
        # An export in this process makes way for requests (facade/bulk/pacing.py), but not for
        # its own client's status polls and downloads, which would otherwise keep it slow.
        if state.bulk is not None and "/$export-" not in request.path:
            state.bulk.pacer.request_began()


def _jwks_of(smart: Smart | None) -> KeyProvider:
    """The built-in server's public keys verify the access tokens it issues."""

    def keys(_refresh: bool = False) -> dict:
        return smart.key().jwks() if smart is not None else {"keys": []}

    return keys


def _terminology_service(source: TerminologySource | None, terminology: Terminology | None) -> TerminologyService | None:
    """The terminology endpoints' service, when the mapping names crosswalks and code tables."""
    tables = source.code_tables() if source is not None else None
    return TerminologyService(terminology, tables) if terminology is not None and tables is not None else None
