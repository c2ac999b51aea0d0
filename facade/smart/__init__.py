"""The SMART on FHIR authorization server (SMART App Launch 2.x, Backend Services).

One module per specification, as authlib arranges its own:

* discovery.py: ``.well-known/smart-configuration``, OpenID configuration, JWKS
* authorize.py (+ templates/): authorization endpoint, sign-in, patient picker, consent
* token.py: the grants (authorization code + PKCE S256, refresh, client credentials) and the tokens
* backend_services.py: ``private_key_jwt`` client assertions (RFC 7523)
* introspection.py (RFC 7662), revocation.py (RFC 7009)
* launch.py: EHR launch contexts; clients.py, users.py, keys.py, scopes.py; store.py: state tables
* events.py: token events for the audit trail; server.py: the pieces wired together

All endpoints live under ``/fhir``: ``/fhir/.well-known/...`` and ``/fhir/auth/...``.
Checking tokens on FHIR requests is the resource server's job (facade/access).
"""

from __future__ import annotations

import orjson
from authlib.common.security import is_secure_transport
from flask import Blueprint, Flask, Response, current_app, request

from facade.config import Settings
from facade.smart import authorize, discovery, introspection, revocation
from facade.smart.events import emit
from facade.smart.discovery import rest_security
from facade.smart.server import Smart
from facade.state import StateStore

STATE_EXTENSION = "fhir_facade_state"
__all__ = ["init_app", "rest_security"]


def init_app(app: Flask, settings: Settings) -> None:
    """Serve the built-in authorization server (``[auth] auth_mode = "builtin"``)."""
    if settings.auth_mode != "builtin":
        return
    state = app.extensions.get(STATE_EXTENSION) or StateStore(settings.state_database_url)
    app.extensions[STATE_EXTENSION] = state
    app.extensions["smart"] = Smart(settings, state)
    app.register_blueprint(_blueprint())


def _blueprint() -> Blueprint:
    blueprint = Blueprint("smart", __name__, url_prefix="/fhir", template_folder="templates")
    get = ["GET"]
    blueprint.add_url_rule("/.well-known/smart-configuration", view_func=discovery.smart_configuration, methods=get)
    blueprint.add_url_rule("/.well-known/openid-configuration", view_func=discovery.openid_configuration, methods=get)
    blueprint.add_url_rule("/.well-known/jwks.json", view_func=discovery.jwks, methods=get)
    blueprint.add_url_rule("/auth/smart-style.json", view_func=discovery.smart_style, methods=get)
    blueprint.add_url_rule("/auth/authorize", view_func=authorize.authorize, methods=["GET", "POST"])
    blueprint.add_url_rule("/auth/login", view_func=authorize.login, methods=["POST"])
    blueprint.add_url_rule("/auth/patient", view_func=authorize.choose_patient, methods=["POST"])
    blueprint.add_url_rule("/auth/consent", view_func=authorize.consent, methods=["POST"])
    blueprint.add_url_rule("/auth/token", view_func=token_endpoint, methods=["POST", "OPTIONS"])
    blueprint.add_url_rule("/auth/introspect", view_func=introspection.introspect, methods=["POST"])
    blueprint.add_url_rule("/auth/revoke", view_func=revocation.revoke, methods=["POST", "OPTIONS"])
    blueprint.before_request(_require_tls)
    blueprint.after_request(_cors_for_public_clients)
    return blueprint


def _require_tls() -> Response | None:
    """OAuth over plain HTTP only on loopback (RFC 6749 §1.6, RFC 8252 §7.3); judged by the public URL."""
    if request.endpoint and request.endpoint.startswith("smart.") and "/auth/" in request.path:
        if not is_secure_transport(current_app.extensions["smart"].fhir_base()):
            body = {"error": "invalid_request", "error_description": "OAuth requires https: set [server] base_url"}
            return Response(orjson.dumps(body), status=400, mimetype="application/json",
                            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
    return None


def token_endpoint() -> Response:
    if request.method == "OPTIONS":
        return Response(status=204)
    response = current_app.extensions["smart"].server.create_token_response()
    if response.status_code >= 400:
        smart = current_app.extensions["smart"]
        error = (response.get_json(silent=True) or {}).get("error")
        client_id = request.form.get("client_id") or (request.authorization.username if request.authorization else None)
        emit(smart.event("failure", client_id, None, grant_type=request.form.get("grant_type"), error=error))
    return response


def _cors_for_public_clients(response: Response) -> Response:
    """Browser apps (public clients) call the token and revocation endpoints cross-origin."""
    if request.endpoint in ("smart.token_endpoint", "smart.revoke") and request.headers.get("Origin"):
        response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
    return response
