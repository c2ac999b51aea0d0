"""authlib's Flask authorization server, bound to our :class:`facade.smart.server.Smart`.

The grants (facade/smart/token.py) and client authentication (backend_services.py) are
authlib's framework-free classes; this module is where they meet Flask requests.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, InvalidScopeError, OAuth2Request
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import request as flask_request

from facade.smart import consent
from facade.smart.backend_services import PrivateKeyJwt
from facade.smart.server import Smart
from facade.smart.token import BackendGrant, CodeGrant, RefreshGrant, S256Only


class OAuthServer(AuthorizationServer):
    def __init__(self, smart: Smart):
        super().__init__()
        self.smart = smart
        self._query_client = smart.clients.get
        self._client_auth = _ClientAuthentication(smart.clients.get)
        self.register_token_generator("default", _no_default_generator)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJwt(smart))
        self.register_grant(CodeGrant, [S256Only(required=True), LaunchContextCheck()])
        self.register_grant(RefreshGrant)
        self.register_grant(BackendGrant)

    def save_token(self, token: Any, request: Any) -> None:
        pass  # tokens are saved by the issuer itself

    def validate_requested_scope(self, scope: str | None) -> None:
        bad = [text for text in consent.split_scopes(scope) if not consent.is_valid(text)]
        if bad:
            raise InvalidScopeError(f"not a SMART scope: {' '.join(bad)[:200]}")

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return PublicRequest(self.smart.fhir_base())

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Any:
        response = super().handle_response(status_code, payload, headers)
        if status_code == 302:
            response.headers["Cache-Control"] = "no-store"
        return response


class PublicRequest(FlaskOAuth2Request):
    """The current Flask request, addressed by the server's public URL (behind a proxy, the
    address it was reached at is not the one clients know)."""

    def __init__(self, fhir_base: str):
        uri = fhir_base + flask_request.full_path.removeprefix("/fhir")
        OAuth2Request.__init__(self, method=flask_request.method, uri=uri, headers=flask_request.headers)
        self._request = flask_request
        self.payload = FlaskOAuth2Payload(flask_request)


class StoredAuthorizationRequest(OAuth2Request):
    """An authorization request kept in the state database while the user signs in and consents."""

    def __init__(self, uri: str, params: dict):
        super().__init__("GET", uri, headers={})
        self.payload = BasicOAuth2Payload(params)
        self._params = params

    @property
    def args(self) -> dict:
        return self._params

    @property
    def form(self) -> dict:
        return {}


class LaunchContextCheck:
    """SMART additions to the authorization request: ``aud`` must be this FHIR server; ``launch`` must be known."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        smart = grant.server.smart
        data = grant.request.payload.data
        if not smart.accepts_audience(data.get("aud") or ""):
            raise InvalidRequestError(f"aud must be this FHIR server's base URL, {smart.fhir_base()}")
        launch = data.get("launch")
        if launch and smart.store.get_launch(launch) is None:
            raise InvalidRequestError("unknown or expired launch")
        if any(text.startswith("system/") for text in consent.split_scopes(data.get("scope"))):
            raise InvalidScopeError("system/ scopes are for backend services, not for apps a person signs in to")


class _ClientAuthentication(ClientAuthentication):
    """401 with ``WWW-Authenticate: Basic`` only when the client tried HTTP Basic (RFC 6749 §5.2); 400 otherwise."""

    def authenticate(self, request: Any, methods: Any, endpoint: Any) -> Any:
        try:
            return super().authenticate(request, methods, endpoint)
        except InvalidClientError as error:
            tried_basic = request.headers.get("Authorization", "").lower().startswith("basic ")
            error.status_code = 401 if tried_basic else 400
            raise


def _no_default_generator(**_kwargs: Any) -> None:
    raise RuntimeError("tokens are issued by facade.smart.token.TokenIssuer")
