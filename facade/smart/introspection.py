"""Token introspection (RFC 7662, SMART "Token Introspection").

Callers authenticate as a confidential client (Basic, form secret or
private_key_jwt) or present a valid access token of this server as a Bearer
token; either may introspect any token (SMART). An unknown, expired or revoked
token is ``{"active": false}`` and nothing more.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Response, current_app, request

import orjson

from facade.smart.server import PublicRequest
from facade.smart.store import loads, now

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CALLER_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def introspect() -> Response:
    smart = current_app.extensions["smart"]
    refusal = _authenticate_caller(smart)
    if refusal is not None:
        return refusal
    token = request.form.get("token")
    if not token:
        return _reply({"error": "invalid_request", "error_description": "token is required"}, 400)
    return _reply(describe(smart, token, request.form.get("token_type_hint")))


def describe(smart, token: str, hint: str | None = None) -> dict:  # noqa: ANN001
    claims = active_access_token(smart, token)
    if claims is not None:
        answer = {"active": True, "token_type": "Bearer"}
        answer.update({key: claims[key] for key in
                       ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "patient", "encounter", "fhirUser")
                       if key in claims})
        user = claims.get("sub") if claims.get("sub") != claims.get("client_id") else None
        if user:
            answer["username"] = user
        return answer
    row = smart.store.find_refresh_token(token)
    if row is not None and not (row.revoked or row.used) and row.expires_at >= now():
        grant = loads(row.grant)
        answer = {"active": True, "token_type": "refresh_token", "client_id": row.client_id, "scope": grant["scope"],
                  "exp": row.expires_at, "iss": smart.fhir_base()}
        if grant.get("username"):
            answer["sub"] = grant["username"]
        return answer
    return {"active": False}


def active_access_token(smart, token: str) -> dict | None:  # noqa: ANN001
    """The claims of a live access token of this server: signature, issuer, expiry, not revoked."""
    try:
        claims = smart.key().verify(token)
    except Exception:  # noqa: BLE001 - any decoding failure means "not one of ours"
        return None
    if claims.get("iss") != smart.fhir_base() or "client_id" not in claims or not isinstance(claims.get("exp"), int):
        return None
    if claims["exp"] < now() or smart.store.is_revoked(str(claims.get("jti"))):
        return None
    return claims


def _authenticate_caller(smart) -> Response | None:  # noqa: ANN001
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        if active_access_token(smart, header[7:].strip()) is None:
            return _reply({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None
    try:
        smart.server.authenticate_client(PublicRequest(), CALLER_AUTH_METHODS, endpoint="introspection")
    except OAuth2Error as error:
        return _reply({"error": error.error}, 401, {"WWW-Authenticate": 'Basic realm="fhir-facade"'})
    return None


def _reply(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, mimetype="application/json")
    response.headers.update(NO_STORE)
    response.headers.update(headers or {})
    return response
