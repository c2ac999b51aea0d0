"""Checklist C, D, E, F (token endpoint, negative tests, refresh, id_token), I (introspection), J (revocation)."""

from __future__ import annotations

import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from support.smart_flow import (
    ASSERTION_TYPE,
    BASE,
    PATIENT_USER,
    AssertionSigner,
    basic,
    decode,
    exchange,
    obtain_code,
    register,
)

SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


@pytest.fixture(scope="module")
def symmetric(app):
    return register(app, "confidential-symmetric")


@pytest.fixture(scope="module")
def signer():
    return AssertionSigner("RS384")


@pytest.fixture(scope="module")
def asymmetric(app, signer):
    return register(app, "confidential-asymmetric", jwks=signer.jwks())[0]


@pytest.fixture()
def recorded(app):
    seen = []
    unsubscribe = app.extensions["fhir_facade"].smart.events.subscribe(lambda event: seen.append(vars(event)))
    yield seen
    unsubscribe()


def _assert_token_body(body):
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 3600
    assert isinstance(body["scope"], str)


def test_c1_c2_c3_public_client(client, public, app):
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)
    response = exchange(client, code, verifier, public.client_id, headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"] and "no-cache" in response.headers["Pragma"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"  # C6
    body = response.get_json()
    _assert_token_body(body)
    assert body["scope"] == SCOPE and isinstance(body["refresh_token"], str)
    assert body["patient"] == PATIENT_USER[2] and body["need_patient_banner"] is True
    claims = decode(app, body["access_token"])
    assert claims["iss"] == claims["aud"] == BASE
    assert claims["sub"] == "maria" and claims["client_id"] == public.client_id and claims["scope"] == SCOPE
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    assert claims["patient"] == PATIENT_USER[2] and claims["fhirUser"] == f"Patient/{PATIENT_USER[2]}"


def test_c1_confidential_symmetric_with_basic(client, symmetric):
    registered, secret = symmetric
    code, verifier, _ = obtain_code(client, registered.client_id, SCOPE)
    response = exchange(client, code, verifier, None, headers=basic(registered.client_id, secret))
    assert response.status_code == 200
    _assert_token_body(response.get_json())


def test_c1_confidential_asymmetric_with_private_key_jwt(client, asymmetric, signer):
    code, verifier, _ = obtain_code(client, asymmetric.client_id, SCOPE)
    response = exchange(client, code, verifier, None, **signer.form(asymmetric.client_id))
    assert response.status_code == 200
    _assert_token_body(response.get_json())


def test_confidential_client_must_authenticate(client, symmetric):
    registered, _ = symmetric
    code, verifier, _ = obtain_code(client, registered.client_id, SCOPE)
    response = exchange(client, code, verifier, registered.client_id)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client"


def test_d1_invalid_code_is_400(client, public):
    obtain_code(client, public.client_id, SCOPE)
    response = exchange(client, "BAD_CODE", "x" * 43, public.client_id)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"
    assert "no-store" in response.headers["Cache-Control"]


def test_d2_invalid_client_id(client, public, symmetric):
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)
    assert exchange(client, code, verifier, "BAD_CLIENT_ID").status_code in (400, 401)
    registered, secret = symmetric
    code, verifier, _ = obtain_code(client, registered.client_id, SCOPE)
    response = exchange(client, code, verifier, None, headers=basic("BAD_CLIENT_ID", secret))
    assert response.status_code == 401  # D7: HTTP Basic was tried → 401 + WWW-Authenticate
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_d2_wrong_secret_is_401_with_www_authenticate(client, symmetric):
    registered, _ = symmetric
    code, verifier, _ = obtain_code(client, registered.client_id, SCOPE)
    response = exchange(client, code, verifier, None, headers=basic(registered.client_id, "wrong"))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "verifier",
    [None, "", "wrong", secrets.token_urlsafe(55)[:73], "challenge"],
    ids=["d3-missing", "d4-blank", "short", "d5-wrong", "d6-plain"],
)
def test_d3_to_d6_pkce_failures(client, public, verifier):
    code, good, params = obtain_code(client, public.client_id, SCOPE)
    if verifier == "challenge":
        verifier = params["code_challenge"]
    response = exchange(client, code, verifier, public.client_id)
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_request", "invalid_grant")
    # a failed exchange burns the code: the right verifier no longer works
    assert exchange(client, code, good, public.client_id).status_code == 400


def test_d7_invalid_grant_type_is_400(client, public):
    response = client.post("/fhir/auth/token", data={"grant_type": "not_a_grant_type", "client_id": public.client_id})
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"
    assert "no-store" in response.headers["Cache-Control"]


def test_code_is_one_time_and_reuse_revokes_what_it_gave(client, public, app):
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)
    first = exchange(client, code, verifier, public.client_id).get_json()
    again = exchange(client, code, verifier, public.client_id)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    introspected = client.post(
        "/fhir/auth/introspect", data={"token": first["access_token"]}, headers={"Authorization": "Bearer " + _other_token(client, public)}
    )
    assert introspected.get_json() == {"active": False}
    refresh = client.post(
        "/fhir/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": public.client_id}
    )
    assert refresh.status_code == 400


def test_code_is_bound_to_client_and_redirect_uri(client, public, app):
    other = register(app, "public", redirect_uris=["http://localhost:9000/callback", "http://localhost:9000/other"])[0]
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)
    assert exchange(client, code, verifier, other.client_id).status_code == 400
    code, verifier, _ = obtain_code(client, other.client_id, SCOPE)
    response = exchange(client, code, verifier, other.client_id, redirect_uri="http://localhost:9000/other")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_expired_code_is_refused(client, public, monkeypatch):
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    assert exchange(client, code, verifier, public.client_id).status_code == 400


def _tokens(client, public):
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)
    return exchange(client, code, verifier, public.client_id).get_json()


def _other_token(client, public):
    return _tokens(client, public)["access_token"]


def _refresh(client, client_id, refresh_token, **extra):
    return client.post(
        "/fhir/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id, **extra}
    )


def test_e1_e3_e4_refresh_without_scope(client, public, app, recorded):
    first = _tokens(client, public)
    response = _refresh(client, public.client_id, first["refresh_token"])
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"] and "no-cache" in response.headers["Pragma"]
    body = response.get_json()
    _assert_token_body(body)
    assert body["scope"] == SCOPE and body["patient"] == PATIENT_USER[2]
    assert body["refresh_token"] != first["refresh_token"]
    assert decode(app, body["access_token"])["patient"] == PATIENT_USER[2]
    assert [event["action"] for event in recorded][-1] == "refresh"
    assert all("access_token" not in str(event) and first["refresh_token"] not in str(event) for event in recorded)


def test_e2_refresh_with_narrower_scope(client, public):
    first = _tokens(client, public)
    response = _refresh(client, public.client_id, first["refresh_token"], scope="patient/*.rs")
    assert response.status_code == 200 and response.get_json()["scope"] == "patient/*.rs"
    # the grant itself keeps its scope: the next refresh without scope is the original grant again
    again = _refresh(client, public.client_id, response.get_json()["refresh_token"])
    assert again.get_json()["scope"] == SCOPE


def test_e6_refresh_never_widens_scope(client, public):
    first = _tokens(client, public)
    for wider in (SCOPE + " user/*.rs", "patient/*.cruds", "system/*.rs"):
        response = _refresh(client, public.client_id, first["refresh_token"], scope=wider)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope"


def test_e6_refresh_token_is_bound_to_its_client(client, public, app):
    other = register(app, "public")[0]
    first = _tokens(client, public)
    assert _refresh(client, other.client_id, first["refresh_token"]).status_code == 400
    assert _refresh(client, public.client_id, first["refresh_token"]).status_code == 200


def test_e5_unknown_refresh_token(client, public):
    assert _refresh(client, public.client_id, "e3c5b0b2-5f7e-4c4f-9a55-1f1d8c4f2a10").status_code in (400, 401)


def test_rotated_refresh_token_reuse_revokes_the_grant(client, public):
    first = _tokens(client, public)
    second = _refresh(client, public.client_id, first["refresh_token"]).get_json()
    stolen = _refresh(client, public.client_id, first["refresh_token"])
    assert stolen.status_code == 400
    # the legitimate holder's newer tokens die with it
    assert _refresh(client, public.client_id, second["refresh_token"]).status_code == 400
    answer = client.post(
        "/fhir/auth/introspect", data={"token": second["access_token"]}, headers={"Authorization": "Bearer " + _other_token(client, public)}
    )
    assert answer.get_json() == {"active": False}


def test_online_access_refresh_tokens_are_short(client, public, app):
    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient online_access patient/*.rs")
    body = exchange(client, code, verifier, public.client_id).get_json()
    with app.test_request_context():
        row = app.extensions["fhir_facade"].smart.store.find_refresh_token(body["refresh_token"])
    assert row.expires_at - int(time.time()) <= 12 * 3600


def test_no_refresh_token_without_offline_or_online_access(client, public):
    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient patient/*.rs")
    assert "refresh_token" not in exchange(client, code, verifier, public.client_id).get_json()


def test_f1_f4_f5_f6_id_token(client, public):
    code, verifier, params = obtain_code(client, public.client_id, SCOPE, extra={"nonce": "n-0S6_WzA2Mj"})
    body = exchange(client, code, verifier, public.client_id).get_json()
    keys = KeySet.import_key_set(client.get("/fhir/.well-known/jwks.json").get_json())
    token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header["kid"] == keys.keys[0].kid
    claims = token.claims
    assert claims["iss"] == BASE and claims["aud"] == public.client_id and claims["sub"] == "maria"
    assert claims["exp"] > time.time() and claims["iat"] <= time.time() and claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["fhirUser"] == f"{BASE}/Patient/{PATIENT_USER[2]}"
    read = client.get(claims["fhirUser"].removeprefix("http://localhost"), headers={"Authorization": "Bearer " + body["access_token"]})
    assert read.status_code == 200 and read.get_json()["resourceType"] == "Patient"


def test_no_id_token_without_openid(client, public):
    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient patient/*.rs")
    assert "id_token" not in exchange(client, code, verifier, public.client_id).get_json()


def test_i1_i2_introspection_of_an_active_token(client, public, symmetric):
    body = _tokens(client, public)
    registered, secret = symmetric
    response = client.post(
        "/fhir/auth/introspect",
        data={"token": body["access_token"]},
        headers={**basic(registered.client_id, secret), "Accept": "application/json"},
    )
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    answer = response.get_json()
    assert answer["active"] is True
    assert answer["client_id"] == public.client_id
    assert set(answer["scope"].split()) == set(body["scope"].split())
    assert isinstance(answer["exp"], int) and answer["exp"] >= time.time()
    assert answer["patient"] == body["patient"]
    id_claims = jwt.decode(
        body["id_token"], KeySet.import_key_set(client.get("/fhir/.well-known/jwks.json").get_json()), algorithms=["RS256"]
    ).claims
    assert answer["iss"] == id_claims["iss"] and answer["sub"] == id_claims["sub"]


def test_i3_invalid_token_is_inactive_and_nothing_else(client, public):
    response = client.post(
        "/fhir/auth/introspect", data={"token": "invalid_token_value"}, headers={"Authorization": "Bearer " + _other_token(client, public)}
    )
    assert response.status_code == 200 and response.get_json() == {"active": False}


def test_i4_introspection_requires_a_caller(client, public):
    body = _tokens(client, public)
    assert client.post("/fhir/auth/introspect", data={"token": body["access_token"]}).status_code == 401
    bad = client.post("/fhir/auth/introspect", data={"token": body["access_token"]}, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "invalid_token" in bad.headers["WWW-Authenticate"]
    # a public client cannot authenticate, so cannot introspect by client id alone
    assert client.post("/fhir/auth/introspect", data={"token": body["access_token"], "client_id": public.client_id}).status_code == 401


def test_i4_backend_service_token_may_introspect(client, app, public):
    signer = AssertionSigner()
    backend = register(app, "backend", jwks=signer.jwks(), scope="system/*.rs")[0]
    service = client.post(
        "/fhir/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs", **signer.form(backend.client_id)}
    ).get_json()["access_token"]
    answer = client.post(
        "/fhir/auth/introspect", data={"token": _other_token(client, public)}, headers={"Authorization": "Bearer " + service}
    ).get_json()
    assert answer["active"] is True and answer["client_id"] == public.client_id


def test_introspection_of_refresh_tokens(client, public, symmetric):
    body = _tokens(client, public)
    registered, secret = symmetric
    answer = client.post(
        "/fhir/auth/introspect",
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
        headers=basic(registered.client_id, secret),
    ).get_json()
    assert answer["active"] is True and answer["client_id"] == public.client_id and answer["scope"] == SCOPE


def test_j1_j2_revoke_access_token_then_introspection_says_inactive(client, public, app, symmetric, recorded):
    body = _tokens(client, public)
    registered, secret = symmetric
    response = client.post(
        "/fhir/auth/revoke", data={"token": body["access_token"], "token_type_hint": "access_token", "client_id": public.client_id}
    )
    assert response.status_code == 200
    assert recorded[-1]["action"] == "revoke" and recorded[-1]["client_id"] == public.client_id
    answer = client.post("/fhir/auth/introspect", data={"token": body["access_token"]}, headers=basic(registered.client_id, secret))
    assert answer.get_json() == {"active": False}
    jti = decode(app, body["access_token"])["jti"]
    with app.test_request_context():
        assert app.extensions["fhir_facade"].smart.store.is_revoked(jti)  # the resource server reads revoked_token
    # revoking again, or an unknown token, is still 200
    again = client.post("/fhir/auth/revoke", data={"token": body["access_token"], "client_id": public.client_id})
    assert again.status_code == 200
    assert client.post("/fhir/auth/revoke", data={"token": "unknown", "client_id": public.client_id}).status_code == 200


def test_j2_revoked_refresh_token_cannot_refresh(client, public, symmetric):
    body = _tokens(client, public)
    registered, secret = symmetric
    response = client.post(
        "/fhir/auth/revoke", data={"token": body["refresh_token"], "token_type_hint": "refresh_token", "client_id": public.client_id}
    )
    assert response.status_code == 200
    assert _refresh(client, public.client_id, body["refresh_token"]).status_code in (400, 401)
    answer = client.post("/fhir/auth/introspect", data={"token": body["access_token"]}, headers=basic(registered.client_id, secret))
    assert answer.get_json() == {"active": False}  # the grant's access token goes with it


def test_revocation_is_limited_to_the_tokens_own_client(client, public, app):
    other = register(app, "public")[0]
    body = _tokens(client, public)
    response = client.post("/fhir/auth/revoke", data={"token": body["access_token"], "client_id": other.client_id})
    assert response.status_code == 400
    assert not _is_revoked(app, body["access_token"])
    unauthenticated = client.post("/fhir/auth/revoke", data={"token": body["access_token"]})
    assert unauthenticated.status_code in (400, 401)


def _is_revoked(app, token):
    with app.test_request_context():
        return app.extensions["fhir_facade"].smart.store.is_revoked(decode(app, token)["jti"])


def test_token_events_carry_no_secrets(app, client, public, recorded):
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)
    body = exchange(client, code, verifier, public.client_id).get_json()
    exchange(client, "BAD_CODE", verifier, public.client_id)
    issue = next(event for event in recorded if event["action"] == "issue")
    assert issue["client_id"] == public.client_id and issue["user"] == "maria" and issue["jti"]
    failure = recorded[-1]
    assert failure["action"] == "failure" and failure["error"] == "invalid_grant"
    audited = next(r for r in app.extensions["fhir_facade"].audit.search(limit=20) if r.get("token_id") == issue["jti"])
    assert (audited["event"], audited["source"]) == ("token-issue", "127.0.0.1")  # the HTTP layer adds where it came from
    text = str(recorded)
    assert body["access_token"] not in text and body["refresh_token"] not in text and code not in text
    assert PATIENT_USER[2] not in text


def test_client_assertion_type_without_assertion_is_not_authentication(client, asymmetric):
    response = client.post(
        "/fhir/auth/token", data={"grant_type": "authorization_code", "code": "x", "client_assertion_type": ASSERTION_TYPE}
    )
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_client"


def test_an_id_token_never_passes_for_an_access_token(client, public, symmetric):
    body = _tokens(client, public)
    registered, secret = symmetric
    answer = client.post("/fhir/auth/introspect", data={"token": body["id_token"]}, headers=basic(registered.client_id, secret))
    assert answer.get_json() == {"active": False}
    as_caller = client.post(
        "/fhir/auth/introspect", data={"token": body["access_token"]}, headers={"Authorization": "Bearer " + body["id_token"]}
    )
    assert as_caller.status_code == 401


def test_tokens_signed_by_another_key_are_inactive(client, public, symmetric):
    from joserfc.jwk import RSAKey

    registered, secret = symmetric
    claims = {
        "iss": BASE,
        "aud": BASE,
        "sub": "maria",
        "client_id": public.client_id,
        "scope": "user/*.rs",
        "exp": int(time.time()) + 300,
        "iat": int(time.time()),
        "jti": "forged",
    }
    forged = jwt.encode({"alg": "RS384"}, claims, RSAKey.generate_key(2048), algorithms=["RS384"])
    answer = client.post("/fhir/auth/introspect", data={"token": forged}, headers=basic(registered.client_id, secret))
    assert answer.get_json() == {"active": False}


def test_c6_token_endpoint_preflight_for_browser_apps(client):
    response = client.options("/fhir/auth/token", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_a_failing_audit_subscriber_stops_token_issuance(client, public):
    code, verifier, _ = obtain_code(client, public.client_id, SCOPE)

    def broken(event):
        raise RuntimeError("audit store unavailable")

    unsubscribe = client.application.extensions["fhir_facade"].smart.events.subscribe(broken)
    try:
        response = exchange(client, code, verifier, public.client_id)
    finally:
        unsubscribe()
    assert response.status_code == 500
    assert "access_token" not in response.get_data(as_text=True)
