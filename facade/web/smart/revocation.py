"""Token revocation (RFC 7009).

A client revokes its own tokens. Revoking an access token lists its ``jti`` in
``revoked_token`` (the resource server refuses it from then on); revoking a
refresh token revokes its whole grant: every refresh token issued from the same
authorization and the latest access token. Unknown and already-revoked tokens
get the same 200 as live ones, so the endpoint reveals nothing.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Response, request

from facade.smart.token import APP_AUTH_METHODS
from facade.web.smart.introspection import reply
from facade.web.smart.oauth import PublicRequest
from facade.web.state import facade_state


def revoke() -> Response:
    state = facade_state()
    smart = state.authority
    try:
        client = state.oauth_server.authenticate_client(PublicRequest(smart.fhir_base()), APP_AUTH_METHODS, endpoint="revocation")
    except OAuth2Error as error:
        headers = {"WWW-Authenticate": 'Basic realm="fhir-facade"'} if error.status_code == 401 else {}
        return reply({"error": error.error, "error_description": error.get_error_description()}, error.status_code, headers)
    token = request.form.get("token")
    if not token:
        return reply({"error": "invalid_request", "error_description": "token is required"}, 400)
    hint = request.form.get("token_type_hint")
    order = (_refresh_token, _access_token) if hint == "refresh_token" else (_access_token, _refresh_token)
    for revoke_kind in order:
        outcome = revoke_kind(smart, client, token)
        if outcome == "revoked":
            break
        if outcome == "other-client":
            return reply({"error": "invalid_request", "error_description": "the token was not issued to this client"}, 400)
    return Response(status=200, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _access_token(smart: Any, client: Any, token: str) -> str | None:
    try:
        claims = smart.key().verify(token)
    except Exception:  # noqa: BLE001 - not one of our access tokens
        return None
    if "jti" not in claims or "client_id" not in claims or not isinstance(claims.get("exp"), int):
        return None
    if claims["client_id"] != client.client_id:
        return "other-client"
    smart.store.revoke_access_token(claims["jti"], claims["exp"])
    smart.emit("revoke", client.client_id, claims.get("sub"), token_type="access_token", jti=claims["jti"])  # noqa: S106 - a kind of token
    return "revoked"


def _refresh_token(smart: Any, client: Any, token: str) -> str | None:
    row = smart.store.find_refresh_token(token)
    if row is None:
        return None
    if row.client_id != client.client_id:
        return "other-client"
    smart.store.revoke_refresh_token(token)
    smart.emit("revoke", client.client_id, None, token_type="refresh_token")  # noqa: S106 - a kind of token
    return "revoked"
