"""Checklist G: the resource server accepts only valid, unexpired, unrevoked tokens meant for it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from facade.state.tables import revoked_token
from support.smart_tokens import BASE, TokenMint, bearer


@pytest.fixture(scope="module")
def patient_id(raw_db):
    return raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' ORDER BY pt_seq LIMIT 1 OFFSET 3").fetchone()[0]


def _invalid(response, fragment: str = "") -> None:
    assert response.status_code == 401
    assert response.get_json()["resourceType"] == "OperationOutcome"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert fragment in response.get_json()["issue"][0]["diagnostics"]


def test_default_configuration_requires_tokens(demo_path, state_url):
    # G1: the demo is secured like production unless access control is switched off explicitly.
    assert Settings().auth_mode == "builtin"
    client = create_app(Settings(demo_path=demo_path, base_url=BASE, state_url=state_url)).test_client()
    assert client.get("/fhir/Patient").status_code == 401


def test_no_token_is_401_with_a_bearer_challenge(client, patient_id):
    response = client.get(f"/fhir/Patient/{patient_id}")
    assert response.status_code == 401  # G1: exactly 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="fhir"'
    assert response.get_json()["issue"][0]["code"] == "login"


def test_valid_token_reads_the_patient(client, mint, patient_id):
    response = client.get(f"/fhir/Patient/{patient_id}", headers=bearer(mint.token("patient/Patient.rs", patient=patient_id)))
    assert response.status_code == 200 and response.get_json()["resourceType"] == "Patient"  # G2


def test_metadata_and_openapi_stay_public(client):
    assert client.get("/fhir/metadata").status_code == 200
    assert client.get("/fhir/openapi.json").status_code == 200


def test_expired_token_is_401_invalid_token(client, mint, patient_id):
    _invalid(
        client.get(f"/fhir/Patient/{patient_id}", headers=bearer(mint.token("patient/*.rs", patient=patient_id, lifetime=-120))), "expired"
    )  # G4


def test_token_for_another_server_is_refused(client, mint, patient_id):
    token = mint.token("patient/*.rs", patient=patient_id, aud="https://other.example/fhir")
    _invalid(client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)))  # G5
    token = mint.token("patient/*.rs", patient=patient_id, iss="https://other.example")
    _invalid(client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)))


def test_bad_signature_unknown_key_alg_none_and_hmac_are_refused(client, mint, patient_id):
    path = f"/fhir/Patient/{patient_id}"
    impostor = TokenMint(kid=mint.kid)  # same kid, different key
    _invalid(client.get(path, headers=bearer(impostor.token("patient/*.rs", patient=patient_id))))
    stranger = TokenMint(kid="unknown-kid")
    _invalid(client.get(path, headers=bearer(stranger.token("patient/*.rs", patient=patient_id))))
    good = mint.token("patient/*.rs", patient=patient_id)
    header, payload, _signature = good.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    _invalid(client.get(path, headers=bearer(f"{none_header}.{payload}.")))
    _invalid(client.get(path, headers=bearer(f"{header}.{payload}.")))  # signature stripped
    # HS256 signed with the public key's bytes as the secret (algorithm confusion).
    hs_header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"%s"}' % mint.kid.encode()).rstrip(b"=").decode()
    mac = hmac.new(mint.key.as_pem(private=False), f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    _invalid(client.get(path, headers=bearer(f"{hs_header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}")))
    _invalid(client.get(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    _invalid(client.get(path, headers=bearer("not-a-jwt")))


def test_revocation_bites_within_a_second(app, client, mint, patient_id):
    # G3: out-of-band revocation (the authorization server writes the revocation list).
    token = mint.token("patient/*.rs", patient=patient_id)
    path = f"/fhir/Patient/{patient_id}"
    assert client.get(path, headers=bearer(token)).status_code == 200
    engine = app.extensions["fhir_facade"].state_store.engine
    with engine.begin() as connection:
        connection.execute(revoked_token.insert().values(jti=mint.claims_of(token)["jti"], expires_at=int(time.time()) + 300))
    time.sleep(1.05)  # the documented delay: revocation answers are cached at most 1 s
    _invalid(client.get(path, headers=bearer(token)), "revoked")
    with engine.begin() as connection:
        connection.execute(sa.delete(revoked_token))


def test_token_without_expiry_is_refused(client, mint, patient_id):
    token = mint.token("patient/*.rs", patient=patient_id)
    claims = mint.claims_of(token)
    del claims["exp"]
    from joserfc import jwt

    unexpiring = jwt.encode({"alg": "RS384", "kid": mint.kid}, claims, mint.key, algorithms=["RS384"])
    _invalid(client.get(f"/fhir/Patient/{patient_id}", headers=bearer(unexpiring)))
