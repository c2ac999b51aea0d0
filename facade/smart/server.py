"""The authorization server object: settings, state, keys, clients, users and authlib's machinery in one place.

One ``Smart`` per Flask app (``app.extensions["smart"]``). Nothing here keeps
per-request state in memory: codes, tokens and replay caches are in the state
database, so any worker can serve any step of a flow.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, InvalidScopeError, OAuth2Request
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app, request

from facade.config import Settings
from facade.smart import scopes
from facade.smart.backend_services import PrivateKeyJwt
from facade.smart.clients import ClientRegistry
from facade.smart.keys import SigningKey, load_signing_key
from facade.smart.store import SmartStore
from facade.smart.token import BackendGrant, CodeGrant, RefreshGrant, S256Only, TokenIssuer
from facade.smart.users import load_users
from facade.state import StateStore


class Smart:
    def __init__(self, settings: Settings, state: StateStore):
        self.settings = settings
        self.store = SmartStore(state)
        self.clients = ClientRegistry(self.store, settings.clients_file)
        self.users = load_users(settings.users_file, settings.is_demo)
        self.issuer = TokenIssuer(self)
        self._key: SigningKey | None = None
        self.server = OAuthServer(self)

    def key(self) -> SigningKey:
        """Loaded on first use, so building an app (e.g. for the OpenAPI document) writes no key file."""
        if self._key is None:
            self._key = load_signing_key(self.settings.signing_key_file, generate=self.settings.signing_key_path is None)
        return self._key

    def fhir_base(self) -> str:
        configured = current_app.config.get("FHIR_BASE_URL")
        return configured or request.host_url.rstrip("/") + "/fhir"

    def event(self, action: str, client_id: str | None, user: str | None, **details) -> dict:
        """A token event for the audit trail (facade.smart.events); no tokens, no patient data."""
        outcome = "failure" if action == "failure" else "success"
        event = {"type": "smart-token", "action": action, "outcome": outcome, "client_id": client_id, "user": user,
                 "source": request.remote_addr if request else None}
        event.update({key: value for key, value in details.items() if value is not None})
        return event


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

    def save_token(self, token, request):  # noqa: ANN001 - tokens are saved by the issuer itself
        pass

    def validate_requested_scope(self, scope: str | None) -> None:
        bad = [text for text in scopes.split(scope) if not scopes.is_valid(text)]
        if bad:
            raise InvalidScopeError(f"not a SMART scope: {' '.join(bad)[:200]}")

    def create_oauth2_request(self, request):  # noqa: ANN001
        if isinstance(request, OAuth2Request):
            return request
        return PublicRequest()

    def handle_response(self, status_code, payload, headers):  # noqa: ANN001
        response = super().handle_response(status_code, payload, headers)
        if status_code == 302:
            response.headers["Cache-Control"] = "no-store"
        return response


class PublicRequest(FlaskOAuth2Request):
    """The current Flask request, addressed by its public URL (the configured base URL when behind a proxy)."""

    def __init__(self):
        from flask import request as flask_request

        configured = current_app.config.get("FHIR_BASE_URL")
        uri = configured + flask_request.full_path.removeprefix("/fhir") if configured else flask_request.url
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
    def args(self):
        return self._params

    @property
    def form(self):
        return {}


class LaunchContextCheck:
    """SMART additions to the authorization request: ``aud`` must be this FHIR server; ``launch`` must be known."""

    def __call__(self, grant):  # noqa: ANN001
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant, redirect_uri):  # noqa: ANN001
        smart = grant.server.smart
        data = grant.request.payload.data
        aud = (data.get("aud") or "").rstrip("/")
        if aud != smart.fhir_base().rstrip("/"):
            raise InvalidRequestError("aud must be this FHIR server's base URL")
        launch = data.get("launch")
        if launch and smart.store.get_launch(launch) is None:
            raise InvalidRequestError("unknown or expired launch")
        if any(text.startswith("system/") for text in scopes.split(data.get("scope"))):
            raise InvalidScopeError("system/ scopes are for backend services, not for apps a person signs in to")


class _ClientAuthentication(ClientAuthentication):
    """401 with ``WWW-Authenticate: Basic`` only when the client tried HTTP Basic (RFC 6749 §5.2); 400 otherwise."""

    def authenticate(self, request, methods, endpoint):  # noqa: ANN001
        try:
            return super().authenticate(request, methods, endpoint)
        except InvalidClientError as error:
            tried_basic = request.headers.get("Authorization", "").lower().startswith("basic ")
            error.status_code = 401 if tried_basic else 400
            raise


def _no_default_generator(**_kwargs):  # noqa: ANN003
    raise RuntimeError("tokens are issued by facade.smart.token.TokenIssuer")
