"""The token endpoint's grants (authorization code + PKCE, refresh token, client credentials) and the tokens they issue.

authlib validates the requests (client authentication, code and redirect_uri
binding, PKCE, refresh-token binding and scope subset); this module decides what
the tokens say. Access tokens are JWTs any worker can check with the public key:
``iss`` and ``aud`` are the FHIR base URL, ``sub`` the user (or the backend
client), ``scope`` the granted scopes, plus the launch context (``patient``,
``encounter``, ``fhirUser``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge

from facade.smart import consent
from facade.smart.clients import Client
from facade.smart.keys import ID_TOKEN_ALG
from facade.smart.store import loads, new_secret, now

if TYPE_CHECKING:
    from facade.smart.server import Smart

CODE_LIFETIME = 60  # seconds; SMART: short-lived and one-time
ONLINE_ACCESS_LIFETIME = 12 * 3600  # online_access: for the working day the user signed in on
APP_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class TokenIssuer:
    """Mints access tokens, id_tokens and refresh tokens for a grant (a dict: user, scope, context)."""

    def __init__(self, smart: Smart):
        self.smart = smart

    def issue(self, client: Client, grant: dict, *, grant_type: str, family: str | None = None, scope: str | None = None) -> dict:
        base = self.smart.fhir_base()
        issued = now()
        lifetime = self.smart.settings.token_lifetime
        granted = scope if scope is not None else grant["scope"]
        claims = {
            "iss": base,
            # A sandbox client's tokens name the sandbox: the identified API refuses them, and
            # the sandbox refuses everyone else's.
            "aud": self.smart.settings.sandbox_base_url if client.audience == "sandbox" else base,
            "sub": grant.get("username") or client.client_id,
            "client_id": client.client_id,
            "scope": granted,
            "iat": issued,
            "exp": issued + lifetime,
            "jti": secrets.token_hex(16),
        }
        for claim, key in (("patient", "patient"), ("encounter", "encounter"), ("fhirUser", "fhir_user")):
            if grant.get(key):
                claims[claim] = grant[key]
        if client.purpose:
            claims["purpose"] = client.purpose
        response = {
            "access_token": self.smart.key().sign(claims),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": granted,
        }
        if grant_type != "client_credentials":
            response.update(self._context(grant, granted))
            id_token = self._id_token(client, grant, granted, issued)
            if id_token:
                response["id_token"] = id_token
            refresh = self._refresh_token(client, grant, family, claims)
            if refresh:
                response["refresh_token"] = refresh
        self.smart.emit(
            "refresh" if grant_type == "refresh_token" else "issue",
            client.client_id,
            grant.get("username"),
            grant_type=grant_type,
            scope=granted,
            jti=str(claims["jti"]),
        )
        return response

    def _context(self, grant: dict, granted: str) -> dict:
        context = {}
        if grant.get("patient"):
            context["patient"] = grant["patient"]
        if grant.get("encounter"):
            context["encounter"] = grant["encounter"]
        context["need_patient_banner"] = not grant.get("ehr_launch", False)  # the EHR shows its own banner
        context["smart_style_url"] = self.smart.fhir_base() + "/auth/smart-style.json"
        return context

    def _id_token(self, client: Client, grant: dict, granted: str, issued: int) -> str | None:
        names = consent.split_scopes(granted)
        if "openid" not in names or not grant.get("username"):
            return None
        claims = {
            "iss": self.smart.fhir_base(),
            "sub": grant["username"],
            "aud": client.client_id,
            "iat": issued,
            "exp": issued + self.smart.settings.token_lifetime,
        }
        if "fhirUser" in names and grant.get("fhir_user"):
            claims["fhirUser"] = f"{self.smart.fhir_base()}/{grant['fhir_user']}"
        if "profile" in names and grant.get("name"):
            claims["name"] = grant["name"]
        if grant.get("nonce"):
            claims["nonce"] = grant["nonce"]
        return self.smart.key().sign(claims, alg=ID_TOKEN_ALG)

    def _refresh_token(self, client: Client, grant: dict, family: str | None, access: dict) -> str | None:
        names = consent.split_scopes(grant["scope"])
        if "offline_access" in names:
            lifetime = self.smart.settings.refresh_token_lifetime
        elif "online_access" in names:
            lifetime = min(ONLINE_ACCESS_LIFETIME, self.smart.settings.refresh_token_lifetime)
        else:
            return None
        token = new_secret()
        self.smart.store.save_refresh_token(
            token, client.client_id, grant, lifetime, family or secrets.token_hex(16), access["jti"], access["exp"]
        )
        return token


class S256Only(CodeChallenge):
    """PKCE as SMART requires it: a ``code_challenge`` on every request, method ``S256``, never ``plain``."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.grant["code_challenge"]

    def get_authorization_code_challenge_method(self, authorization_code):
        return "S256"


@dataclass
class IssuedCode:
    """An authorization code as authlib's grant expects it (already consumed: codes are one-time)."""

    grant: dict
    family: str

    def get_redirect_uri(self) -> str:
        return self.grant["redirect_uri"]

    def get_scope(self) -> str:
        return self.grant["scope"]


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = APP_AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        grant = dict(request.user)
        grant["redirect_uri"] = request.payload.redirect_uri
        grant["code_challenge"] = request.payload.data.get("code_challenge")
        grant["nonce"] = request.payload.data.get("nonce")
        self.server.smart.store.save_code(code, request.client.client_id, grant, CODE_LIFETIME)

    def query_authorization_code(self, code: str, client: Client) -> IssuedCode | None:
        found = self.server.smart.store.consume_code(code, client.client_id)
        return IssuedCode(*found) if found else None

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        pass  # consumed when it was looked up

    def authenticate_user(self, authorization_code: IssuedCode) -> dict:
        return authorization_code.grant

    def create_token_response(self):
        code = self.request.authorization_code
        token = self.server.smart.issuer.issue(self.request.client, code.grant, grant_type=self.GRANT_TYPE, family=code.family)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class StoredRefreshToken:
    def __init__(self, row):
        self.row = row
        self.grant = loads(row.grant)

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.client_id

    def get_scope(self) -> str:
        return self.grant["scope"]


class RefreshGrant(RefreshTokenGrant):
    """Refresh with rotation: each refresh token works once; presenting a used one revokes the whole grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = APP_AUTH_METHODS

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefreshToken | None:
        row = self.server.smart.store.find_refresh_token(refresh_token)
        if row is None or row.revoked or row.expires_at < now():
            return None
        return StoredRefreshToken(row)

    def authenticate_user(self, refresh_token: StoredRefreshToken) -> dict:
        return refresh_token.grant

    def create_token_response(self):
        presented = self.request.form.get("refresh_token")
        row = self.server.smart.store.rotate_refresh_token(presented)
        if row is None:
            raise InvalidGrantError("refresh token is no longer valid")
        stored = self.request.refresh_token
        requested = self.request.payload.scope
        scope = " ".join(consent.split_scopes(requested)) if requested else stored.grant["scope"]
        token = self.server.smart.issuer.issue(
            self.request.client, stored.grant, grant_type=self.GRANT_TYPE, family=row.family, scope=scope
        )
        return 200, token, self.TOKEN_RESPONSE_HEADER


class BackendGrant(ClientCredentialsGrant):
    """SMART Backend Services: a signed client assertion, system scopes within the client's registration, no refresh."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]

    def create_token_response(self):
        client = self.request.client
        requested = self.request.payload.scope
        if not requested:
            raise InvalidScopeError("scope is required")
        scope = client.get_allowed_scope(requested)
        if not scope:
            raise InvalidScopeError("none of the requested scopes is registered for this client")
        token = self.server.smart.issuer.issue(client, {"scope": scope}, grant_type=self.GRANT_TYPE)
        return 200, token, self.TOKEN_RESPONSE_HEADER
