"""``private_key_jwt`` client authentication (RFC 7523 §3, SMART client-confidential-asymmetric).

Used by confidential-asymmetric apps and by Backend Services. An assertion is
accepted only when: ``alg`` is RS384 or ES384 and matches the key type; the
``kid`` names exactly one registered key; any ``jku`` equals the registered JWKS
URL; ``iss`` = ``sub`` = a registered client id; ``aud`` is this token endpoint;
``exp`` is in the future and at most five minutes ahead; and its ``jti`` was not
seen before for that client (a replay cache in the state database).

Keys come from the registration (a JWKS) or its JWKS URL, fetched over HTTPS
(plain HTTP only to loopback) and cached no longer than the response's
``Cache-Control: max-age`` allows.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from facade.smart.clients import Client
from facade.smart.store import now

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = {"RS384": "RSA", "ES384": "EC"}
MAX_ASSERTION_LIFETIME = 300
LEEWAY = 60
_MAX_JWKS_BYTES = 256 * 1024


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, smart):
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.smart = smart
        self.keys = ClientKeys()

    def __call__(self, query_client, request):
        form = request.form
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return None
        assertion = form["client_assertion"]
        headers, claims = self.extract_assertion(assertion)
        client_id = claims.get("sub")
        client = query_client(client_id) if isinstance(client_id, str) else None
        if client is None:
            raise InvalidClientError(description="unknown client (assertion sub)")
        if form.get("client_id") not in (None, client_id):
            raise InvalidClientError(description="client_id does not match the assertion")
        if not client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token"):
            raise InvalidClientError(description="this client does not authenticate with private_key_jwt")
        alg = headers.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidClientError(description="client assertions must be signed with RS384 or ES384")
        if "jku" in headers and headers["jku"] != client.jwks_url:
            raise InvalidClientError(description="jku is not the registered JWKS URL")
        key = self.keys.resolve(client, headers.get("kid"), alg)
        try:
            verified = jwt.decode(assertion, key, algorithms=[alg]).claims
        except JoseError as exc:
            raise InvalidClientError(description="client assertion signature does not verify") from exc
        expires = verified.get("exp")
        if not isinstance(expires, int) or expires > now() + MAX_ASSERTION_LIFETIME + LEEWAY:
            raise InvalidClientError(description="client assertion exp must be at most five minutes ahead")
        request.client = client
        self.verify_claims(verified)  # iss = sub, aud, exp, then the jti replay check last
        return self.authenticate_client(client)

    def get_audiences(self) -> list[str]:
        return [self.smart.fhir_base() + "/auth/token"]

    def validate_jti(self, claims: dict, jti: str) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            return False
        return self.smart.store.first_use_of_jti(claims["sub"], jti, int(claims["exp"]) + LEEWAY)


class ClientKeys:
    """Registered public keys by client: inline JWKS, or a JWKS URL cached as its Cache-Control allows."""

    def __init__(self, fetch: Callable[[str], tuple[dict, int]] | None = None):
        self._fetch = fetch or fetch_jwks
        self._cache: dict[str, tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def resolve(self, client: Client, kid: str | None, alg: str) -> Any:
        if not kid:
            raise InvalidClientError(description="client assertion header lacks kid")
        matches = self._matching(client, kid, refresh=False)
        if not matches and client.jwks_url:
            matches = self._matching(client, kid, refresh=True)  # the client may have rotated its keys
        if len(matches) != 1:
            raise InvalidClientError(description=f"kid matches {len(matches)} registered keys, not exactly one")
        key = matches[0]
        if key.key_type != ALGORITHMS[alg]:
            raise InvalidClientError(description=f"{alg} needs a {ALGORITHMS[alg]} key")
        return key

    def _matching(self, client: Client, kid: str, *, refresh: bool) -> list:
        document = client.jwks if client.jwks else self._remote(client.jwks_url, refresh)
        try:
            keys = KeySet.import_key_set(document).keys  # type: ignore[arg-type]  # checked by joserfc itself
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidClientError(description="the client's registered JWKS cannot be read") from exc
        return [key for key in keys if key.kid == kid]

    def _remote(self, url: str | None, refresh: bool) -> dict:
        if not url:
            raise InvalidClientError(description="no keys registered for this client")
        with self._lock:
            cached = self._cache.get(url)
        if cached and not refresh and cached[0] > time.monotonic():
            return cached[1]
        try:
            document, max_age = self._fetch(url)
        except (OSError, ValueError) as exc:
            raise InvalidClientError(description="the client's JWKS URL cannot be fetched") from exc
        with self._lock:
            if max_age > 0:
                self._cache[url] = (time.monotonic() + max_age, document)
            else:
                self._cache.pop(url, None)
        return document


def fetch_jwks(url: str) -> tuple[dict, int]:
    """(JWKS, seconds it may be cached). HTTPS only, except to this machine."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname or "")):
        raise ValueError("JWKS URLs must use https")
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - scheme checked above
        body = response.read(_MAX_JWKS_BYTES + 1)
        cache_control = response.headers.get("Cache-Control", "")
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return orjson.loads(body), _max_age(cache_control)


def _max_age(cache_control: str) -> int:
    directives = cache_control.lower()
    if "no-store" in directives or "no-cache" in directives:
        return 0
    match = re.search(r"max-age=(\d+)", directives)
    return int(match.group(1)) if match else 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
