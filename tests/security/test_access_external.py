"""Resource-server mode for an existing identity provider: its JWKS URL, or its introspection endpoint.
The IdP is a small HTTP server on localhost here."""

from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import orjson
import pytest

from facade.app import create_app
from facade.config import ConfigError, Settings
from support.smart_tokens import BASE, TokenMint, bearer

ISSUER = "https://idp.hospital.example"


class FakeIdp:
    def __init__(self, mint: TokenMint):
        self.mint = mint
        self.jwks_fetches = 0
        self.active: dict[str, dict] = {}
        self.auth_seen: list[str] = []
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, body: dict) -> None:
                payload = orjson.dumps(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                idp.jwks_fetches += 1
                self._send(idp.mint.jwks())

            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                idp.auth_seen.append(self.headers.get("Authorization", ""))
                self._send(idp.active.get(form["token"][0], {"active": False}))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def idp():
    server = FakeIdp(TokenMint(kid="idp-1"))
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def patient_id(raw_db):
    return raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' ORDER BY pt_seq LIMIT 1 OFFSET 5").fetchone()[0]


def test_external_mode_needs_its_settings():
    with pytest.raises(ConfigError):
        Settings(auth_mode="external").validate()
    with pytest.raises(ConfigError):
        Settings(auth_mode="sometimes").validate()


def test_external_jwks_tokens_are_enforced_like_ours(idp, demo_path, state_url, patient_id):
    app = create_app(
        Settings(
            demo_path=demo_path,
            base_url=BASE,
            state_url=state_url,
            auth_mode="external",
            external_issuer=ISSUER,
            external_jwks_url=f"{idp.url}/jwks",
        )
    )
    client = app.test_client()
    token = idp.mint.token("patient/Patient.rs", patient=patient_id, iss=ISSUER)
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    assert client.get("/fhir/Patient/someone-else", headers=bearer(token)).status_code == 404
    assert client.get("/fhir/Observation", headers=bearer(token)).status_code == 403
    # Our own issuer's tokens are not accepted in external mode.
    assert (
        client.get(f"/fhir/Patient/{patient_id}", headers=bearer(idp.mint.token("patient/Patient.rs", patient=patient_id))).status_code
        == 401
    )


def test_key_rotation_refetches_the_jwks_once(idp):
    from facade.access.tokens import JwtValidator, RemoteJwks

    validator = JwtValidator(RemoteJwks(f"{idp.url}/jwks", min_refresh=0), issuers=(ISSUER,), audiences=(BASE,))
    assert validator.validate(idp.mint.token("user/*.rs", iss=ISSUER))["scope"] == "user/*.rs"
    fetches = idp.jwks_fetches
    old = idp.mint
    idp.mint = TokenMint(kid="idp-2")
    try:
        assert validator.validate(idp.mint.token("user/*.rs", iss=ISSUER))["iss"] == ISSUER
        assert idp.jwks_fetches == fetches + 1
    finally:
        idp.mint = old


def test_introspected_opaque_tokens(idp, demo_path, state_url, patient_id):
    app = create_app(
        Settings(
            demo_path=demo_path,
            base_url=BASE,
            state_url=state_url,
            auth_mode="external",
            introspection_url=f"{idp.url}/introspect",
            introspection_client_id="facade",
            introspection_client_secret="s3cret",
        )
    )
    client = app.test_client()
    idp.active["opaque-1"] = {
        "active": True,
        "scope": "patient/Patient.r",
        "patient": patient_id,
        "client_id": "app",
        "exp": int(time.time()) + 60,
    }
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer("opaque-1")).status_code == 200
    assert idp.auth_seen[-1] == "Basic " + base64.b64encode(b"facade:s3cret").decode()
    assert client.get(f"/fhir/Patient?_id={patient_id}", headers=bearer("opaque-1")).status_code == 403
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer("unknown")).status_code == 401
    idp.active["opaque-1"] = {"active": False}  # revoked at the IdP
    time.sleep(1.05)  # introspection answers are kept at most 1 s
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer("opaque-1")).status_code == 401
