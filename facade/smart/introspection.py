"""What introspection says about a token (RFC 7662, SMART "Token Introspection"): the
answer for a live access or refresh token of this server, ``{"active": false}`` otherwise.
The endpoint is facade/web/smart/introspection.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facade.smart.store import loads, now

if TYPE_CHECKING:
    from facade.smart.server import Smart


def describe(smart: Smart, token: str, hint: str | None = None) -> dict:
    claims = active_access_token(smart, token)
    if claims is not None:
        answer = {"active": True, "token_type": "Bearer"}
        answer.update(
            {
                key: claims[key]
                for key in ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "patient", "encounter", "fhirUser")
                if key in claims
            }
        )
        user = claims.get("sub") if claims.get("sub") != claims.get("client_id") else None
        if user:
            answer["username"] = user
        return answer
    row = smart.store.find_refresh_token(token)
    if row is not None and not (row.revoked or row.used) and row.expires_at >= now():
        grant = loads(row.grant)
        answer = {
            "active": True,
            "token_type": "refresh_token",
            "client_id": row.client_id,
            "scope": grant["scope"],
            "exp": row.expires_at,
            "iss": smart.fhir_base(),
        }
        if grant.get("username"):
            answer["sub"] = grant["username"]
        return answer
    return {"active": False}


def active_access_token(smart: Smart, token: str) -> dict | None:
    """The claims of a live access token of this server: signature, issuer, expiry, not revoked."""
    try:
        claims = smart.key().verify(token)
    except Exception:  # noqa: BLE001 - any decoding failure means "not one of ours"
        return None
    if claims.get("iss") not in smart.settings.accepted_base_urls or "client_id" not in claims or not isinstance(claims.get("exp"), int):
        return None
    if claims["exp"] < now() or smart.store.is_revoked(str(claims.get("jti"))):
        return None
    return claims
