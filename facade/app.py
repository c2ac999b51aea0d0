"""Application factory: settings in, a WSGI app serving FHIR under /fhir out."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from facade import __version__
from facade import smart
from facade.config import Settings
from facade.audit.store import AuditStore
from facade.core.service import FhirService
from facade.smart import events
from facade.state import StateStore
from facade.web.audit_routes import make_audit_blueprint
from facade.web.auth import JWKS_EXTENSION, audit_response, audit_token_event, build_authenticator
from facade.web.cors import register_cors
from facade.web.error_handlers import register_error_handlers
from facade.web.routes import make_blueprint
from facade.web.terminology_routes import register_terminology
from legacy_adapters.engines import create_legacy_engine, sqlite_url
from legacy_adapters.mapping.loader import load_mapping
from legacy_adapters.protocol import LegacyAdapter
from legacy_adapters.sql_adapter import SqlAdapter

OPENAPI_PATH = "/fhir/openapi.json"


def build_adapter(settings: Settings) -> SqlAdapter:
    mapping = load_mapping(settings.mapping)
    url = settings.database_url or sqlite_url(settings.demo_path)
    return SqlAdapter(mapping, create_legacy_engine(url, pool_size=settings.pool_size))


def create_app(settings: Settings | None = None, adapter: LegacyAdapter | None = None) -> Flask:
    settings = settings or Settings()
    adapter = adapter or build_adapter(settings)
    app = Flask("fhir_facade")
    app.config.update(
        FHIR_BASE_URL=settings.base_url.rstrip("/") if settings.base_url else None,
        FHIR_STRICT_HANDLING=settings.strict_handling,
        API_TITLE="fhir-facade",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/fhir",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    service = FhirService(adapter, default_count=settings.default_count, max_count=settings.max_count,
                          security=smart.rest_security if settings.auth_mode == "builtin" else None)
    app.extensions["fhir_facade"] = service
    api = Api(app, spec_kwargs={"info": {"description": "FHIR R4 façade over a legacy EHR database"}})
    api.register_blueprint(make_blueprint(service))
    register_terminology(app, api, adapter)
    api.register_blueprint(make_audit_blueprint())
    register_error_handlers(app)
    register_cors(app)
    _access_control(app, settings, service)
    smart.init_app(app, settings)  # SMART authorization server (facade/smart)
    if "smart" in app.extensions:  # its public keys verify the access tokens it issues
        app.extensions.setdefault(JWKS_EXTENSION, lambda: app.extensions["smart"].key().jwks())
    return app


def _access_control(app: Flask, settings: Settings, service: FhirService) -> None:
    """Tokens checked on every FHIR route (unless auth_mode is off), every interaction audited."""
    # Tables are created on first use, so building the app (e.g. for the OpenAPI document)
    # touches no database.
    state = StateStore(settings.state_database_url)
    audit = AuditStore(state.engine, delivery=settings.audit_delivery, spool_dir=settings.audit_spool_dir)
    app.extensions["fhir_facade_state"] = state
    app.extensions["fhir_facade_audit"] = audit
    app.extensions["fhir_facade_auth"] = build_authenticator(app, settings, service.adapter.search_params, state.engine)
    app.extensions["fhir_facade_audit_unsubscribe"] = events.subscribe(audit_token_event(audit), app)
    app.after_request(audit_response)
