"""Token introspection (RFC 7662, SMART "Token Introspection").

Callers authenticate as a confidential client (Basic, form secret or
private_key_jwt) or present a valid access token of this server as a Bearer
token; either may introspect any token (SMART). An unknown, expired or revoked
token is ``{"active": false}`` and nothing more.
"""

from __future__ import annotations

from typing import Any

import orjson
from authlib.oauth2 import OAuth2Error
from flask import Response, request

from facade.smart.introspection import active_access_token, describe
from facade.web.smart.oauth import PublicRequest
from facade.web.state import facade_state

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CALLER_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def introspect() -> Response:
    smart = facade_state().authority
    refusal = _authenticate_caller(smart)
    if refusal is not None:
        return refusal
    token = request.form.get("token")
    if not token:
        return reply({"error": "invalid_request", "error_description": "token is required"}, 400)
    return reply(describe(smart, token, request.form.get("token_type_hint")))


def _authenticate_caller(smart: Any) -> Response | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        if active_access_token(smart, header[7:].strip()) is None:
            return reply({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None
    try:
        facade_state().oauth_server.authenticate_client(PublicRequest(smart.fhir_base()), CALLER_AUTH_METHODS, endpoint="introspection")
    except OAuth2Error as error:
        return reply({"error": error.error}, 401, {"WWW-Authenticate": 'Basic realm="fhir-facade"'})
    return None


def reply(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    response.headers.update(NO_STORE)
    response.headers.update(headers or {})
    return response
