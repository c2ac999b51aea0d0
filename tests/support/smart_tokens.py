"""Access tokens minted in tests, exactly as the contract with the authorization server says:
RS384 JWTs with ``kid``, ``iss`` = ``aud`` = the FHIR base URL, ``scope``, ``exp``, ``jti``, ``patient``…"""

from __future__ import annotations

import time
import uuid

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

BASE = "http://testserver/fhir"


class TokenMint:
    def __init__(self, kid: str = "test-key-1"):
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS384"})
        self.kid = kid

    def jwks(self, _refresh: bool = False) -> dict:
        return KeySet([self.key]).as_dict(private=False)

    def token(self, scope: str, *, patient: str | None = None, lifetime: int = 300, alg: str = "RS384", key=None, **claims) -> str:
        now = int(time.time())
        payload = {
            "iss": BASE,
            "aud": BASE,
            "sub": "user-1",
            "client_id": "app-1",
            "scope": scope,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        if patient:
            payload["patient"] = patient
        payload.update(claims)
        return jwt.encode({"alg": alg, "kid": self.kid}, payload, key or self.key, algorithms=[alg])

    def claims_of(self, token: str) -> dict:
        return jwt.decode(token, self.key, algorithms=["RS384"]).claims


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def secured_app(demo_path: str, state_url: str, mint: TokenMint, **settings):
    """The app as deployed (auth_mode builtin), trusting ``mint``'s key as the built-in server's."""
    from facade.app import create_app
    from facade.config import Settings

    app = create_app(Settings(demo_path=demo_path, base_url=BASE, state_url=state_url, **settings))
    app.extensions["fhir_facade"].auth.validator.keys = mint.jwks
    return app
