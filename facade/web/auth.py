"""The resource server's HTTP edge: bearer token → :class:`Access` per request, and its audit record.

Every FHIR route calls :func:`request_access` before touching data; ``/fhir/metadata``,
``/fhir/openapi.json`` and ``/.well-known/*`` do not, and stay public. After the
response is made, :func:`audit_response` appends one audit record per interaction;
if the record cannot be written the response is withheld (503), never sent unaudited.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cachetools import TTLCache
from flask import Flask, Response, current_app, g, request

from facade.access.grant import Access, Grant
from facade.access.tokens import IntrospectionValidator, JwtValidator, RemoteJwks, revocation_check
from facade.audit.store import AuditStore, iter_ids
from facade.config import Settings
from facade.errors import Unauthorized, UpstreamUnavailable
from facade.web.rendering import fhir_response

log = logging.getLogger("facade.web.auth")
JWKS_EXTENSION = "smart_jwks"  # the built-in authorization server puts its JWKS provider here


class Authenticator:
    def __init__(self, settings: Settings, catalogue: Callable[[str], dict], validator: JwtValidator | IntrospectionValidator | None):
        self.mode = settings.auth_mode
        self._catalogue = catalogue
        self.validator = validator
        # Access objects memoise their per-type answers; keep one per token for a few seconds.
        self._accesses: TTLCache = TTLCache(maxsize=20_000, ttl=5)
        self._lock = threading.Lock()

    def access(self, authorization: str | None, base_url: str) -> Access:
        if self.validator is None:
            return Access.unrestricted()
        if not authorization:
            raise Unauthorized("This server requires a SMART access token (Authorization: Bearer …)", error=None)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("The Authorization header must be 'Bearer <access token>'")
        claims = self.validator.validate(token, base_url)  # every request: expiry and revocation
        access = self._accesses.get(token)
        if access is None:
            access = Access(Grant.from_claims(claims), self._catalogue)
            with self._lock:
                self._accesses[token] = access
        return access


def build_authenticator(app: Flask, settings: Settings, catalogue: Callable[[str], dict], state_engine) -> Authenticator:  # noqa: ANN001
    validator: JwtValidator | IntrospectionValidator | None = None
    if settings.auth_mode == "builtin":
        def builtin_keys(_refresh: bool = False) -> dict:
            provider = app.extensions.get(JWKS_EXTENSION)
            return provider() if provider is not None else {"keys": []}

        validator = JwtValidator(builtin_keys, is_revoked=revocation_check(state_engine))
    elif settings.auth_mode == "external":
        if settings.introspection_url:
            validator = IntrospectionValidator(settings.introspection_url, settings.introspection_client_id, settings.introspection_client_secret)
        else:
            validator = JwtValidator(RemoteJwks(settings.external_jwks_url), issuer=settings.external_issuer, is_revoked=revocation_check(state_engine))
    return Authenticator(settings, catalogue, validator)


def request_access(base_url: str) -> Access:
    """This request's access, or Unauthorized. Remembered on ``g`` for the audit record."""
    g.audit = {}
    current_app.extensions["fhir_facade_audit"].ensure()  # the revocation list lives there too
    access = current_app.extensions["fhir_facade_auth"].access(request.headers.get("Authorization"), base_url)
    g.access = access
    return access


def note_result(resources: list[dict], *, query: str | None = None, patient: str | None = None) -> None:
    """What the interaction returned, for its audit record."""
    g.audit = {"ids": list(iter_ids(resources)), "query": query, "patient": patient}


def audit_response(response: Response) -> Response:
    if "audit" not in g:
        return response  # not a FHIR data interaction (metadata, OpenAPI, unknown paths)
    endpoint = request.url_rule.endpoint.rsplit(".", 1)[-1] if request.url_rule else ""
    interaction, _, resource_type = endpoint.partition("_")
    if interaction == "search" and resource_type.startswith("post_"):
        resource_type = resource_type[5:]
    access = g.get("access")
    grant = access.grant if access is not None else None
    record = {
        "kind": "rest",
        "interaction": interaction,
        "resource_type": resource_type,
        "status": response.status_code,
        "source": request.remote_addr,
        "client_id": grant.client_id if grant else None,
        "subject": grant.subject if grant else None,
        "fhir_user": grant.fhir_user if grant else None,
        "token_id": grant.token_id if grant else None,
        "patient": (grant.patient if grant else None) or g.audit.get("patient"),
        "ids": g.audit.get("ids") or [],
    }
    if interaction == "search":
        record["query"] = g.audit.get("query") if g.audit.get("query") is not None else request.query_string.decode(errors="replace")
    elif request.view_args:
        record["ids"] = record["ids"] or [f"{resource_type}/{request.view_args.get('resource_id')}"]
    try:
        current_app.extensions["fhir_facade_audit"].append(record)
    except Exception as error:  # noqa: BLE001 - any failure: withhold the response
        log.error("audit record could not be written (%s); response withheld", type(error).__name__)
        failure = UpstreamUnavailable("The access could not be audited; try again")
        return fhir_response(failure.to_outcome(), failure.status, headers={"Retry-After": "5"})
    return response


def audit_token_event(store: AuditStore) -> Callable[[dict], None]:
    """A subscriber for facade.smart.events: token events join the same chain."""

    def record(event: dict) -> None:
        # The authorization server reports {"action": issue|refresh|revoke|failure, "outcome", "user", "error"}.
        action = event.get("action")
        failed = event.get("outcome", "success") != "success" or action == "failure"
        store.append({
            "kind": "token",
            "event": f"token-{action}" if action else event.get("event") or event.get("type"),
            "status": event.get("status", 400 if failed else 200),
            "client_id": event.get("client_id"),
            "subject": event.get("sub") or event.get("user"),
            "fhir_user": event.get("fhirUser"),
            "patient": event.get("patient"),
            "token_id": event.get("jti"),
            "scope": event.get("scope"),
            "source": event.get("source"),
            "reason": event.get("reason") or event.get("error"),
        })

    return record
