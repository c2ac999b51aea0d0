"""Drive the SMART authorization server the way an app and a person would (Flask test client, no browser)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from facade.app import create_app
from facade.config import Settings

BASE = "http://localhost/fhir"
TOKEN_URL = BASE + "/auth/token"
REDIRECT = "http://localhost:9000/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PATIENT_USER = ("maria", "demo-patient", "d12f8fe1-bb0b-4600-89db-e3f0fa191edb")
CLINICIAN = ("dr.gonzalez", "demo-clinician")


def make_settings(demo_path: str, tmp: Path, state_url: str | None = None, **extra) -> Settings:
    key_file = tmp / "signing-key.pem"
    if not key_file.exists():
        key_file.write_bytes(RSAKey.generate_key(2048, private=True).as_pem(private=True))
    values = {
        "demo_path": demo_path,
        "base_url": BASE,
        "state_url": state_url or f"sqlite:///{tmp}/state.sqlite",
        "signing_key_path": str(key_file),
        **extra,
    }
    return Settings(**values)


def make_app(settings: Settings):
    return create_app(settings)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def register(app, kind: str, **kwargs):
    smart = app.extensions["fhir_facade"].smart
    redirect_uris = kwargs.pop("redirect_uris", [REDIRECT] if kind != "backend" else [])
    return smart.clients.add(kind, f"Test {kind}", redirect_uris, **kwargs)


def auth_params(client_id: str, challenge: str, scope: str, **extra) -> dict:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": str(uuid.uuid4()),
        "aud": BASE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {key: value for key, value in params.items() if value is not None}


def form_fields(html: str) -> dict:
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1) for name in ("flow", "csrf")}


def checked_scopes(html: str) -> list[str]:
    return re.findall(r'name="scope" value="([^"]+)" checked', html)


def all_offered_scopes(html: str) -> list[str]:
    return re.findall(r'name="scope" value="([^"]+)"', html)


def redirect_params(response) -> dict:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def sign_in(
    client, params: dict, user=PATIENT_USER, *, method: str = "GET", patient: str | None = None, choose=None, decision: str = "allow"
):
    """Authorize → login → (picker) → consent; returns the final response (a redirect to the app)."""
    if method == "GET":
        page = client.get("/fhir/auth/authorize", query_string=params)
    else:
        page = client.post("/fhir/auth/authorize", data=params)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    fields = form_fields(page.get_data(as_text=True))
    page = client.post("/fhir/auth/login", data={**fields, "username": user[0], "password": user[1]})
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    html = page.get_data(as_text=True)
    if 'action="patient"' in html:
        page = client.post("/fhir/auth/patient", data={**fields, "action": "choose", "patient": patient})
        assert page.status_code == 200, page.get_data(as_text=True)[:500]
        html = page.get_data(as_text=True)
    granted = choose(html) if choose else checked_scopes(html)
    return client.post("/fhir/auth/consent", data={**fields, "decision": decision, "scope": granted})


def obtain_code(client, client_id: str, scope: str, **kwargs) -> tuple[str, str, dict]:
    verifier, challenge = pkce()
    params = auth_params(client_id, challenge, scope, **kwargs.pop("extra", {}))
    answer = redirect_params(sign_in(client, params, **kwargs))
    assert answer["state"] == params["state"]
    return answer["code"], verifier, params


def exchange(client, code: str, verifier: str | None, client_id: str, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id}
    if verifier is not None:
        data["code_verifier"] = verifier
    headers = extra.pop("headers", {})
    data.update(extra)
    return client.post("/fhir/auth/token", data={k: v for k, v in data.items() if v is not None}, headers=headers)


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


class AssertionSigner:
    """A client's key pair and RFC 7523 assertions signed with it."""

    def __init__(self, alg: str = "RS384"):
        self.alg = alg
        self.key = RSAKey.generate_key(2048, private=True) if alg.startswith("RS") else ECKey.generate_key("P-384", private=True)
        self.kid = self.key.thumbprint()

    def jwks(self) -> dict:
        public = self.key.as_dict(private=False)
        public["kid"] = self.kid
        return {"keys": [public]}

    def assertion(self, client_id: str, **overrides) -> str:
        header = {"alg": self.alg, "kid": self.kid, "typ": "JWT"}
        header.update(overrides.pop("header", {}))
        issued = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": issued + 300, "iat": issued, "jti": secrets.token_hex(32)}
        claims.update(overrides)
        claims = {key: value for key, value in claims.items() if value is not None}
        header = {key: value for key, value in header.items() if value is not None}
        return jwt.encode(header, claims, self.key, algorithms=[header["alg"]])

    def form(self, client_id: str, **overrides) -> dict:
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": self.assertion(client_id, **overrides)}


def decode(app, token: str) -> dict:
    with app.test_request_context():
        return app.extensions["fhir_facade"].smart.key().verify(token)


class LiveServer:
    """An app on a real socket (for clients that speak HTTP themselves: a browser, fhirclient).

    The server's identity (its base URL) is only known once the port is bound, so the app is
    built then, by ``build(base_url)``; requests through its Flask test client see the same base.
    """

    def __init__(self, build):
        import threading

        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, None, threaded=True)
        self.root = f"http://127.0.0.1:{self.server.server_port}"
        self.base = self.root + "/fhir"
        self.app = self.server.app = build(self.base)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
