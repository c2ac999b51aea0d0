"""Bearer tokens → validated claims (RFC 6750, RFC 7519, RFC 7662).

Two validators, one interface (``validate(token) -> claims``):

- :class:`JwtValidator`: signed JWTs checked against a JWKS (the built-in
  server's keys, or an external identity provider's JWKS URL). Only asymmetric
  algorithms are accepted; ``alg=none`` and HMAC tokens are refused.
- :class:`IntrospectionValidator`: opaque tokens asked of an RFC 7662 endpoint.

Cost on the hot path: an RS384 verification takes ~50-70 µs, so a verified token's
claims are remembered for ``cache_seconds`` (default 5 s, never past ``exp``).
Revocation still bites quickly: the revocation list is asked per token id at most
every ``revocation_seconds`` (default 1 s) — one indexed primary-key lookup in the
state database — so a revoked token stops working within that second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import orjson
import sqlalchemy as sa
from cachetools import TTLCache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from facade.errors import Unauthorized
from facade.state.tables import revoked_token

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384")
KeyProvider = Callable[[bool], dict]  # refresh → JWKS document


class JwtValidator:
    def __init__(
        self,
        keys: KeyProvider,
        *,
        issuers: tuple[str, ...],  # the built-in server: this server's base URL (and the demo's loopback aliases)
        audiences: tuple[str, ...],  # this server's base URL (and aliases)
        is_revoked: Callable[[str], bool] | None = None,
        cache_seconds: float = 5.0,
        revocation_seconds: float = 1.0,
        leeway: int = 10,  # clock skew allowed on exp/iat with an external issuer
    ):
        self.keys = keys  # refresh → JWKS document; replaceable (e.g. another trusted signer)
        self.issuers = tuple(issuers)
        self.audiences = tuple(audiences)
        self._is_revoked = is_revoked
        self._leeway = leeway
        self._verified: TTLCache = TTLCache(maxsize=20_000, ttl=cache_seconds)
        self._revoked: TTLCache = TTLCache(maxsize=20_000, ttl=revocation_seconds)
        self._lock = threading.Lock()
        self._key_set: tuple[dict, KeySet] | None = None

    def validate(self, token: str) -> dict:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            with self._lock:
                self._verified[token] = claims
        if claims["exp"] <= time.time() - self._leeway:
            raise Unauthorized("The access token has expired")
        jti = claims.get("jti")
        if self._is_revoked is not None and isinstance(jti, str):
            revoked = self._revoked.get(jti)
            if revoked is None:
                revoked = self._is_revoked(jti)
                with self._lock:
                    self._revoked[jti] = revoked
            if revoked:
                raise Unauthorized("The access token has been revoked")
        return claims

    def _verify(self, token: str) -> dict:
        try:
            decoded = self._decode(token, refresh=False)
        except LookupError:
            decoded = self._decode(token, refresh=True)  # the issuer may have rotated its keys
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=self._leeway,
            iss={"essential": True, "values": list(self.issuers)},
            aud={"essential": True, "values": list(self.audiences)},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as error:
            raise Unauthorized(f"The access token is not valid here: {_reason(error)}{self._expected(error)}") from None
        if not isinstance(claims.get("exp"), int):
            raise Unauthorized("The access token has no valid expiry")
        return claims

    def _decode(self, token: str, *, refresh: bool) -> jwt.Token:
        document = self.keys(refresh)
        cached = self._key_set
        if cached is not None and cached[0] == document:
            keys = cached[1]  # importing keys costs more than verifying with them
        else:
            try:
                keys = KeySet.import_key_set(document)  # type: ignore[arg-type]  # checked by joserfc itself
            except (JoseError, ValueError, TypeError, KeyError):
                raise Unauthorized("The server cannot load the keys to check access tokens") from None
            self._key_set = (document, keys)
        try:
            return jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as error:
            if not refresh and _unknown_key(error):
                raise LookupError from None
            raise Unauthorized(f"The access token is not valid: {_reason(error)}") from None

    def _expected(self, error: JoseError) -> str:
        """Which issuer or audience this server expects, when that is what failed: the usual
        mistake is a token minted for another address or port of the server."""
        claim = getattr(error, "claim", None)
        expected = {"iss": self.issuers, "aud": self.audiences}.get(claim or "")
        return f" (this server expects {claim} {' or '.join(expected)})" if expected else ""


def _unknown_key(error: Exception) -> bool:
    return "key" in type(error).__name__.lower() or "kid" in str(error).lower()


def _reason(error: Exception) -> str:
    # joserfc's messages name the failed check, never the token's content.
    return getattr(error, "description", None) or type(error).__name__


class RemoteJwks:
    """An external identity provider's JWKS, fetched over HTTPS and kept ``ttl`` seconds.
    A token signed with an unknown ``kid`` forces one refetch, at most every ``min_refresh`` seconds."""

    def __init__(self, url: str, *, ttl: float = 300.0, min_refresh: float = 30.0, timeout: float = 5.0):
        self.url = url
        self._ttl, self._min_refresh, self._timeout = ttl, min_refresh, timeout
        self._document: dict | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def __call__(self, refresh: bool = False) -> dict:
        now = time.monotonic()
        with self._lock:
            stale = self._document is None or now - self._fetched > self._ttl
            if stale or (refresh and now - self._fetched > self._min_refresh):
                try:
                    with urlopen(self.url, timeout=self._timeout) as response:  # noqa: S310 - configured URL
                        self._document = orjson.loads(response.read())
                    self._fetched = now
                except (URLError, OSError, ValueError):
                    if self._document is None:
                        raise Unauthorized("The identity provider's keys cannot be fetched", error=None) from None
            assert self._document is not None
            return self._document


class IntrospectionValidator:
    """Opaque tokens: ask the identity provider (RFC 7662). Answers are kept ``cache_seconds``
    (default 1 s, never past ``exp``), which is therefore also how late a revocation bites."""

    def __init__(
        self,
        url: str,
        client_id: str | None,
        client_secret: str | None,
        *,
        audiences: tuple[str, ...] | None = None,
        refused_audiences: tuple[str, ...] = (),
        cache_seconds: float = 1.0,
        timeout: float = 5.0,
    ):
        """``audiences``: when given, the answer must name one of them as ``aud``;
        ``refused_audiences``: an answer naming one of them is refused (the sandbox's tokens on
        the identified API, which accepts answers without ``aud``)."""
        self.url = url
        self._audiences = audiences
        self._refused = refused_audiences
        self._auth = _basic(client_id, client_secret) if client_id else None
        self._timeout = timeout
        self._answers: TTLCache = TTLCache(maxsize=20_000, ttl=cache_seconds)
        self._lock = threading.Lock()

    def validate(self, token: str) -> dict:
        claims = self._answers.get(token)
        if claims is None:
            claims = self._introspect(token)
            with self._lock:
                self._answers[token] = claims
        if not claims.get("active"):
            raise Unauthorized("The access token is not active")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= time.time():
            raise Unauthorized("The access token has expired")
        aud = claims.get("aud")
        named = [a.rstrip("/") for a in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []) if isinstance(a, str)]
        if (self._audiences is not None and not set(named) & set(self._audiences)) or set(named) & set(self._refused):
            raise Unauthorized("The access token was not issued for this server")
        return claims

    def _introspect(self, token: str) -> dict:
        request = Request(self.url, data=urlencode({"token": token}).encode(), method="POST")  # noqa: S310 - configured URL
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        request.add_header("Accept", "application/json")
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - configured URL
                answer = orjson.loads(response.read())
        except (URLError, OSError, ValueError):
            raise Unauthorized("The access token cannot be checked right now", error=None) from None
        return answer if isinstance(answer, dict) else {"active": False}


def _basic(client_id: str, secret: str | None) -> str:
    import base64
    from urllib.parse import quote

    raw = f"{quote(client_id, safe='')}:{quote(secret or '', safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def revocation_check(engine: sa.Engine) -> Callable[[str], bool]:
    """Whether a token id is on the revocation list: one primary-key lookup."""
    statement = sa.select(sa.literal(1)).select_from(revoked_token).where(revoked_token.c.jti == sa.bindparam("jti"))

    def is_revoked(jti: str) -> bool:
        with engine.connect() as connection:
            return connection.execute(statement, {"jti": jti}).first() is not None

    return is_revoked
