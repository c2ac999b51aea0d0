"""Checklist K: SMART Backend Services (client_credentials + private_key_jwt, RFC 7523)."""

from __future__ import annotations

import http.server
import threading
import time

import orjson
import pytest

from facade.smart.backend_services import _max_age
from support.smart_flow import TOKEN_URL, AssertionSigner, decode, register


@pytest.fixture(scope="module", params=["RS384", "ES384"])
def backend(request, app):
    signer = AssertionSigner(request.param)
    registered = register(app, "backend", jwks=signer.jwks(), scope="system/*.rs system/Patient.read")[0]
    return registered, signer


def _request(client, client_id, signer, scope="system/*.rs", **overrides):
    form = {"scope": scope, "grant_type": "client_credentials", **signer.form(client_id, **overrides)}
    return client.post("/fhir/auth/token", data=form, headers={"Accept": "application/json"})


def test_k1_k2_k3_success(client, app, backend):
    registered, signer = backend
    response = _request(client, registered.client_id, signer)
    assert response.status_code in (200, 201)
    assert "no-store" in response.headers["Cache-Control"]
    body = response.get_json()
    assert body["access_token"] and body["token_type"].lower() == "bearer"
    assert body["expires_in"] <= 300 and body["scope"] == "system/*.rs"
    assert "refresh_token" not in body and "id_token" not in body  # K3, E8
    claims = decode(app, body["access_token"])
    assert claims["sub"] == claims["client_id"] == registered.client_id and "patient" not in claims


def test_k4_invalid_grant_type_is_400(client, backend):
    registered, signer = backend
    form = {"scope": "system/*.rs", "grant_type": "not_a_grant_type", **signer.form(registered.client_id)}
    assert client.post("/fhir/auth/token", data=form).status_code == 400


def test_k5_invalid_client_assertion_type_is_400(client, backend):
    registered, signer = backend
    form = {
        "scope": "system/*.rs",
        "grant_type": "client_credentials",
        "client_assertion_type": "not_an_assertion_type",
        "client_assertion": signer.assertion(registered.client_id),
    }
    response = client.post("/fhir/auth/token", data=form)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client"


def test_k6_bad_iss_is_refused(client, backend):
    registered, signer = backend
    response = _request(client, registered.client_id, signer, iss="not_a_valid_iss")
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_k7_replayed_jti_is_refused(client, backend):
    registered, signer = backend
    assertion = signer.assertion(registered.client_id)
    form = {
        "scope": "system/*.rs",
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert client.post("/fhir/auth/token", data=form).status_code == 200
    replay = client.post("/fhir/auth/token", data=form)
    assert replay.status_code in (400, 401) and replay.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 120},  # expired (beyond the 60 s leeway)
        {"exp": int(time.time()) + 3600},  # more than five minutes ahead
        {"aud": "https://elsewhere.example/token"},
        {"aud": TOKEN_URL.replace("/token", "/authorize")},
        {"jti": None},
        {"exp": None},
        {"sub": "someone-else"},
        {"header": {"kid": "no-such-kid"}},
        {"header": {"kid": None}},
        {"header": {"jku": "https://attacker.example/jwks.json"}},
    ],
    ids=[
        "expired",
        "exp-too-far",
        "aud-other",
        "aud-authorize",
        "no-jti",
        "no-exp",
        "sub-mismatch",
        "unknown-kid",
        "no-kid",
        "foreign-jku",
    ],
)
def test_k7_assertion_rejections(client, backend, overrides):
    registered, signer = backend
    response = _request(client, registered.client_id, signer, **overrides)
    assert response.status_code in (400, 401), overrides
    assert response.get_json()["error"] == "invalid_client"


def test_k7_signature_by_another_key_is_refused(client, backend):
    registered, signer = backend
    impostor = AssertionSigner(signer.alg)
    impostor.kid = signer.kid  # claims the registered kid, signs with its own key
    response = _request(client, registered.client_id, impostor)
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_k7_unsupported_alg_and_kty_mismatch_are_refused(client, app):
    rs256 = AssertionSigner("RS384")
    rs256.alg = "RS256"
    registered = register(app, "backend", jwks=rs256.jwks(), scope="system/*.rs")[0]
    assert _request(client, registered.client_id, rs256).status_code in (400, 401)
    # a key registered under the kid of an RSA key but used with ES384
    ec = AssertionSigner("ES384")
    rsa_jwks = AssertionSigner("RS384").jwks()
    rsa_jwks["keys"][0]["kid"] = ec.kid
    mismatched = register(app, "backend", jwks=rsa_jwks, scope="system/*.rs")[0]
    assert _request(client, mismatched.client_id, ec).status_code in (400, 401)


def test_k7_kid_matching_two_keys_is_refused(client, app):
    signer = AssertionSigner("RS384")
    twice = {"keys": signer.jwks()["keys"] * 2}
    registered = register(app, "backend", jwks=twice, scope="system/*.rs")[0]
    assert _request(client, registered.client_id, signer).status_code in (400, 401)


def test_k8_scope_mediation(client, backend):
    registered, signer = backend
    narrowed = _request(client, registered.client_id, signer, scope="system/Observation.rs system/Patient.cruds")
    assert narrowed.status_code == 200 and narrowed.get_json()["scope"] == "system/Observation.rs"
    refused = _request(client, registered.client_id, signer, scope="system/Patient.c user/*.rs")
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_scope"
    missing = _request(client, registered.client_id, signer, scope="")
    assert missing.status_code == 400 and missing.get_json()["error"] == "invalid_scope"


def test_app_clients_cannot_use_client_credentials(client, app):
    signer = AssertionSigner()
    app_client = register(app, "confidential-asymmetric", jwks=signer.jwks())[0]
    response = _request(client, app_client.client_id, signer)
    assert response.status_code in (400, 401) and response.get_json()["error"] == "unauthorized_client"


class _JwksServer:
    def __init__(self, document: dict, cache_control: str):
        self.document, self.cache_control, self.hits = document, cache_control, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                body = orjson.dumps(outer.document)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", outer.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("cache_control, expected_hits", [("max-age=300", 1), ("no-store", 2)])
def test_k9_keys_by_jwks_url_cached_only_as_allowed(client, app, cache_control, expected_hits):
    signer = AssertionSigner("ES384")
    server = _JwksServer(signer.jwks(), cache_control)
    try:
        registered = register(app, "backend", jwks_url=server.url, scope="system/*.rs")[0]
        assert _request(client, registered.client_id, signer).status_code == 200
        assert _request(client, registered.client_id, signer).status_code == 200
        assert server.hits == expected_hits
        # key rotation: a new kid triggers one fresh fetch even while the old document is cached
        rotated = AssertionSigner("ES384")
        server.document = rotated.jwks()
        assert _request(client, registered.client_id, rotated).status_code == 200
        assert _request(client, registered.client_id, rotated, header={"jku": server.url}).status_code == 200
    finally:
        server.close()


def test_jwks_url_must_be_https_unless_loopback(client, app):
    signer = AssertionSigner()
    registered = register(app, "backend", jwks_url="http://keys.example/jwks.json", scope="system/*.rs")[0]
    response = _request(client, registered.client_id, signer)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client"


def test_cache_control_parsing():
    assert _max_age("public, max-age=600") == 600
    assert _max_age("max-age=600, no-cache") == 0
    assert _max_age("") == 0
