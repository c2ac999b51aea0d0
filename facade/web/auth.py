"""The resource server's HTTP edge: bearer token → :class:`Access` per request.

Every FHIR route calls :func:`request_access` before touching data; ``/fhir/metadata``,
``/fhir/openapi.json`` and ``/.well-known/*`` do not, and stay public.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from cachetools import TTLCache
from flask import g, request

from facade.access.grant import Access, Grant
from facade.access.tokens import IntrospectionValidator, JwtValidator, KeyProvider, RemoteJwks, revocation_check
from facade.config import Settings
from facade.errors import Unauthorized
from facade.search.params import SearchParamDef
from facade.web.state import facade_state

Catalogue = Callable[[str], Mapping[str, SearchParamDef]]


class Authenticator:
    def __init__(self, catalogue: Catalogue, validator: JwtValidator | IntrospectionValidator | None):
        self._catalogue = catalogue
        self.validator = validator
        # Access objects memoise their per-type answers; keep one per token for a few seconds.
        self._accesses: TTLCache = TTLCache(maxsize=20_000, ttl=5)
        self._lock = threading.Lock()

    def access(self, authorization: str | None) -> Access:
        if self.validator is None:
            return Access.unrestricted()
        if not authorization:
            raise Unauthorized("This server requires a SMART access token (Authorization: Bearer …)", error=None)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("The Authorization header must be 'Bearer <access token>'")
        claims = self.validator.validate(token)  # every request: expiry and revocation
        access = self._accesses.get(token)
        if access is None:
            access = Access(Grant.from_claims(claims), self._catalogue)
            with self._lock:
                self._accesses[token] = access
        return access


def build_authenticator(
    settings: Settings, catalogue: Catalogue, keys: KeyProvider, state_engine: sa.Engine, *, audiences: tuple[str, ...] | None = None
) -> Authenticator:
    """``keys``: the built-in authorization server's JWKS (auth_mode "builtin"). ``audiences``: the
    ``aud`` a token must name (default: the identified API's base URLs; the sandbox has its own)."""
    validator: JwtValidator | IntrospectionValidator | None = None
    accepted = audiences or settings.accepted_base_urls
    if settings.auth_mode == "builtin":
        # The built-in server issues both APIs' tokens: one issuer, an audience each.
        issuers = settings.accepted_base_urls
        validator = JwtValidator(keys, issuers=issuers, audiences=accepted, is_revoked=revocation_check(state_engine))
    elif settings.auth_mode == "external":
        if settings.introspection_url:
            validator = IntrospectionValidator(
                settings.introspection_url,
                settings.introspection_client_id,
                settings.introspection_client_secret,
                audiences=audiences,
                refused_audiences=settings.sandbox_base_urls if settings.sandbox_enabled and audiences is None else (),
            )
        else:  # Settings.validate has checked both are set
            assert settings.external_jwks_url is not None and settings.external_issuer is not None
            validator = JwtValidator(
                RemoteJwks(settings.external_jwks_url),
                issuers=(settings.external_issuer,),
                audiences=accepted,
                is_revoked=revocation_check(state_engine),
            )
    return Authenticator(catalogue, validator)


def request_access(authenticator: Authenticator | None = None) -> Access:
    """This request's access, or Unauthorized. Remembered on ``g`` for the audit record.
    ``authenticator``: another API's (the sandbox's), with its own audience."""
    access = (authenticator or facade_state().auth).access(request.headers.get("Authorization"))
    g.access = access
    return access
