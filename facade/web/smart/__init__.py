"""The SMART on FHIR authorization server's endpoints (SMART App Launch 2.x, Backend Services).

What it decides lives in facade/smart (grants, tokens, clients, consent, keys); here are
its HTTP endpoints, one module per specification, as authlib arranges its own:

* discovery.py: ``.well-known/smart-configuration``, OpenID configuration, JWKS
* authorize.py (+ templates/): authorization endpoint, sign-in, patient picker, consent
* introspection.py (RFC 7662), revocation.py (RFC 7009); the token endpoint is below
* oauth.py: authlib's Flask authorization server, bound to facade.smart.server.Smart

All endpoints live under ``/fhir``: ``/fhir/.well-known/...`` and ``/fhir/auth/...``.
Checking tokens on FHIR requests is the resource server's job (facade/access, facade/web/auth.py).
"""

from __future__ import annotations

import orjson
from authlib.common.security import is_secure_transport
from flask import Blueprint, Response, request

from facade.web.smart import authorize, discovery, introspection, revocation
from facade.web.state import facade_state

__all__ = ["blueprint"]


def blueprint() -> Blueprint:
    endpoints = Blueprint("smart", __name__, url_prefix="/fhir", template_folder="templates")
    get = ["GET"]
    endpoints.add_url_rule("/.well-known/smart-configuration", view_func=discovery.smart_configuration, methods=get)
    endpoints.add_url_rule("/.well-known/openid-configuration", view_func=discovery.openid_configuration, methods=get)
    endpoints.add_url_rule("/.well-known/jwks.json", view_func=discovery.jwks, methods=get)
    endpoints.add_url_rule("/auth/smart-style.json", view_func=discovery.smart_style, methods=get)
    endpoints.add_url_rule("/auth/authorize", view_func=authorize.authorize, methods=["GET", "POST"])
    endpoints.add_url_rule("/auth/login", view_func=authorize.login, methods=["POST"])
    endpoints.add_url_rule("/auth/patient", view_func=authorize.choose_patient, methods=["POST"])
    endpoints.add_url_rule("/auth/consent", view_func=authorize.consent, methods=["POST"])
    endpoints.add_url_rule("/auth/token", view_func=token_endpoint, methods=["POST", "OPTIONS"])
    endpoints.add_url_rule("/auth/introspect", view_func=introspection.introspect, methods=["POST"])
    endpoints.add_url_rule("/auth/revoke", view_func=revocation.revoke, methods=["POST", "OPTIONS"])
    endpoints.before_request(_require_tls)
    endpoints.after_request(_cors_for_public_clients)
    return endpoints


def _require_tls() -> Response | None:
    """OAuth over plain HTTP only on loopback (RFC 6749 §1.6, RFC 8252 §7.3); judged by the public URL."""
    oauth_endpoint = request.endpoint and request.endpoint.startswith("smart.") and "/auth/" in request.path
    if oauth_endpoint and not is_secure_transport(facade_state().settings.public_base_url):
        body = {"error": "invalid_request", "error_description": "OAuth requires https: set [server] base_url"}
        return Response(
            orjson.dumps(body), status=400, mimetype="application/json", headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
        )
    return None


def token_endpoint() -> Response:
    if request.method == "OPTIONS":
        return Response(status=204)
    state = facade_state()
    response = state.oauth_server.create_token_response()
    if response.status_code >= 400:
        error = (response.get_json(silent=True) or {}).get("error")
        client_id = request.form.get("client_id") or (request.authorization.username if request.authorization else None)
        state.authority.emit("failure", client_id, None, grant_type=request.form.get("grant_type"), step="token", error=error)
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
