"""Checklist A (discovery), F2–F3 (OpenID configuration, JWKS): what clients read before they start."""

from __future__ import annotations

import re

import pytest
from joserfc.jwk import KeySet

from support.smart_flow import BASE, make_app, make_settings


@pytest.fixture(scope="module")
def smart_client(demo_path, tmp_path_factory):
    return make_app(make_settings(demo_path, tmp_path_factory.mktemp("smart-discovery"))).test_client()


@pytest.mark.parametrize("accept", [None, "application/json", "application/fhir+json"])
def test_a1_well_known_is_json_whatever_the_accept_header(smart_client, accept):
    headers = {"Accept": accept} if accept else {}
    response = smart_client.get("/fhir/.well-known/smart-configuration", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(response.get_json(), dict)


def test_a2_a3_required_fields(smart_client):
    document = smart_client.get("/fhir/.well-known/smart-configuration").get_json()
    assert document["authorization_endpoint"] == BASE + "/auth/authorize"
    assert document["token_endpoint"] == BASE + "/auth/token"
    assert document["capabilities"] and all(isinstance(item, str) for item in document["capabilities"])
    assert "authorization_code" in document["grant_types_supported"]
    assert "S256" in document["code_challenge_methods_supported"]
    assert "plain" not in document["code_challenge_methods_supported"]


def test_a4_openid_fields_because_sso_openid_connect_is_advertised(smart_client):
    document = smart_client.get("/fhir/.well-known/smart-configuration").get_json()
    assert "sso-openid-connect" in document["capabilities"]
    assert document["issuer"] == BASE
    assert document["jwks_uri"] == BASE + "/.well-known/jwks.json"


def test_a5_every_endpoint_is_absolute(smart_client):
    document = smart_client.get("/fhir/.well-known/smart-configuration").get_json()
    urls = [value for key, value in document.items() if key.endswith(("_endpoint", "_uri"))]
    assert len(urls) >= 5
    assert all(url.startswith("http://localhost/fhir/") for url in urls)


def test_a6_asymmetric_and_backend_discovery(smart_client):
    document = smart_client.get("/fhir/.well-known/smart-configuration").get_json()
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    assert {"RS384", "ES384"} <= set(document["token_endpoint_auth_signing_alg_values_supported"])
    assert "client_credentials" in document["grant_types_supported"]
    assert document["scopes_supported"]


def test_a7_capabilities_for_both_onc_scenarios(smart_client):
    capabilities = set(smart_client.get("/fhir/.well-known/smart-configuration").get_json()["capabilities"])
    standalone = {
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-standalone-patient",
        "permission-offline",
        "permission-patient",
        "authorize-post",
        "permission-v2",
        "permission-v1",
    }
    ehr = {
        "launch-ehr",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-banner",
        "context-style",
        "context-ehr-patient",
        "permission-offline",
        "permission-user",
        "authorize-post",
        "permission-v2",
        "permission-v1",
        "context-ehr-encounter",
    }
    assert standalone <= capabilities
    assert ehr <= capabilities


def test_a8_a9_recommended_fields(smart_client):
    document = smart_client.get("/fhir/.well-known/smart-configuration").get_json()
    pattern = re.compile(r"^(patient|user|system|\*)/(\*|[A-Z][A-Za-z]+)\.[cruds]+(\?.*)?$")
    assert any(pattern.match(scope) for scope in document["scopes_supported"])
    assert "patient/Observation.rs" in document["scopes_supported"]
    assert document["response_types_supported"] == ["code"]
    assert document["introspection_endpoint"] == BASE + "/auth/introspect"
    assert document["revocation_endpoint"] == BASE + "/auth/revoke"
    assert set(document["token_endpoint_auth_methods_supported"]) <= {"client_secret_post", "client_secret_basic", "private_key_jwt"}


@pytest.mark.parametrize(
    "path", ["/fhir/.well-known/smart-configuration", "/fhir/.well-known/openid-configuration", "/fhir/.well-known/jwks.json"]
)
def test_a10_cors_on_discovery(smart_client, path):
    response = smart_client.get(path, headers={"Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://app.example")


def test_f2_openid_configuration_at_the_issuer(smart_client):
    issuer = smart_client.get("/fhir/.well-known/smart-configuration").get_json()["issuer"]
    response = smart_client.get(issuer.removeprefix("http://localhost") + "/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.get_json()
    for field in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ):
        assert document[field], field
    assert document["issuer"] == issuer
    assert "RS256" in document["id_token_signing_alg_values_supported"]


def test_f3_jwks_has_an_importable_public_rsa_key(smart_client):
    response = smart_client.get("/fhir/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.get_json()["keys"]
    assert [key["kty"] for key in keys] == ["RSA"]
    assert "d" not in keys[0] and "p" not in keys[0]  # never the private half
    assert keys[0]["kid"]
    KeySet.import_key_set(response.get_json())


def test_demo_signing_key_is_generated_once_in_the_data_directory(demo_path, tmp_path, monkeypatch):
    from facade.config import Settings

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = Settings(demo_path=demo_path, base_url=BASE, state_url=f"sqlite:///{tmp_path}/state.sqlite")
    first = make_app(settings).test_client().get("/fhir/.well-known/jwks.json").get_json()
    key_file = tmp_path / "fhir-facade" / "signing-key.pem"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    second = make_app(settings).test_client().get("/fhir/.well-known/jwks.json").get_json()
    assert first == second  # another worker loads the same key


def test_a_real_deployment_without_a_key_file_gets_no_generated_key(tmp_path):
    from facade.smart.keys import KeyConfigError, load_signing_key

    with pytest.raises(KeyConfigError):
        load_signing_key(str(tmp_path / "missing.pem"), generate=False)
    with pytest.raises(KeyConfigError):
        load_signing_key(None, generate=False)
    assert not (tmp_path / "missing.pem").exists()


def test_auth_mode_off_serves_no_authorization_server(demo_path, tmp_path):
    settings = make_settings(demo_path, tmp_path, auth_mode="off")
    response = make_app(settings).test_client().get("/fhir/.well-known/smart-configuration")
    assert response.status_code != 200


@pytest.mark.parametrize("path", ["/fhir/auth/token", "/fhir/auth/introspect", "/fhir/auth/revoke", "/fhir/auth/authorize"])
def test_oauth_endpoints_refuse_plain_http_except_on_loopback(demo_path, tmp_path, path):
    from dataclasses import replace

    settings = replace(make_settings(demo_path, tmp_path), base_url="http://fhir.example/fhir")
    response = make_app(settings).test_client().post(path, data={"grant_type": "client_credentials", "token": "x"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request" and "https" in response.get_json()["error_description"]
    secure = replace(settings, base_url="https://fhir.example/fhir")
    assert make_app(secure).test_client().post(path, data={"token": "x"}).status_code != 500


def test_a12_capability_statement_security_matches_well_known(smart_client):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    statement = smart_client.get("/fhir/metadata").get_json()
    CapabilityStatement.model_validate(statement)
    security = statement["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    (oauth,) = [
        ext for ext in security["extension"] if ext["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    ]
    uris = {ext["url"]: ext["valueUri"] for ext in oauth["extension"]}
    well_known = smart_client.get("/fhir/.well-known/smart-configuration").get_json()
    assert uris["authorize"] == well_known["authorization_endpoint"]
    assert uris["token"] == well_known["token_endpoint"]
    assert uris["introspect"] == well_known["introspection_endpoint"]
    assert uris["revoke"] == well_known["revocation_endpoint"]


def test_no_security_block_when_authorization_is_off(demo_path, tmp_path):
    statement = make_app(make_settings(demo_path, tmp_path, auth_mode="off")).test_client().get("/fhir/metadata").get_json()
    assert "security" not in statement["rest"][0]
