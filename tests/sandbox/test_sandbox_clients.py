"""Clients registered for the sandbox get tokens for its audience only; the settings that turn it on."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from facade.cli import main
from facade.config import ConfigError, Settings
from facade.smart.keys import load_signing_key
from support.smart_flow import BASE, TOKEN_URL, AssertionSigner, decode, make_app, make_settings, register

SANDBOX_BASE = "http://localhost/sandbox/fhir"


@pytest.fixture(scope="module")
def app(demo_path, tmp_path_factory):
    return make_app(make_settings(demo_path, tmp_path_factory.mktemp("sandbox-smart"), sandbox_key="3c" * 32))


def token_for(client, client_id: str, signer: AssertionSigner) -> str:
    form = {"scope": "system/*.rs", "grant_type": "client_credentials", **signer.form(client_id)}
    response = client.post("/fhir/auth/token", data=form, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def test_a_sandbox_client_gets_sandbox_tokens_only(app):
    client = app.test_client()
    signer = AssertionSigner()
    lab, _ = register(app, "backend", jwks=signer.jwks(), scope="system/*.rs", sandbox=True, purpose="sepsis model")
    ehr, _ = register(app, "backend", jwks=signer.jwks(), scope="system/*.rs")
    assert TOKEN_URL.startswith(BASE)
    lab_token, ehr_token = token_for(client, lab.client_id, signer), token_for(client, ehr.client_id, signer)
    claims = decode(app, lab_token)
    assert claims["aud"] == SANDBOX_BASE and claims["iss"] == BASE and claims["purpose"] == "sepsis model"
    assert decode(app, ehr_token)["aud"] == BASE
    for path, good, bad in (("/sandbox/fhir/Patient?_count=1", lab_token, ehr_token), ("/fhir/Patient?_count=1", ehr_token, lab_token)):
        assert client.get(path, headers={"Authorization": f"Bearer {good}"}).status_code == 200
        refused = client.get(path, headers={"Authorization": f"Bearer {bad}"})
        assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers


def test_sandbox_clients_are_backend_clients_with_a_purpose(app):
    signer = AssertionSigner()
    with pytest.raises(ValueError, match="purpose"):
        register(app, "backend", jwks=signer.jwks(), scope="system/*.rs", sandbox=True)
    with pytest.raises(ValueError, match="backend"):
        register(app, "public", sandbox=True, purpose="x")
    with pytest.raises(ValueError, match="sandbox clients"):
        register(app, "backend", jwks=signer.jwks(), scope="system/*.rs", purpose="x")


def test_the_discovery_document_of_the_sandbox(app):
    document = app.test_client().get("/sandbox/fhir/.well-known/smart-configuration").get_json()
    assert document["issuer"] == BASE and document["token_endpoint"] == TOKEN_URL
    assert document["grant_types_supported"] == ["client_credentials"]
    assert "Observation" in str(document["scopes_supported"]) and "Provenance" not in str(document["scopes_supported"])


def test_the_demo_token_command_mints_sandbox_tokens(demo_path, tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path), "FHIR_FACADE_DEMO_PATH": demo_path, "FHIR_FACADE_STATE_URL": f"sqlite:///{tmp_path}/s.sqlite"}
    runner = CliRunner()
    minted = runner.invoke(main, ["token", "--sandbox", "--scope", "system/*.rs", "--purpose", "tour"], env=env)
    assert minted.exit_code == 0, minted.output
    claims = load_signing_key(str(tmp_path / "fhir-facade" / "signing-key.pem"), generate=False).verify(minted.output.splitlines()[-1])
    assert claims["aud"] == "http://127.0.0.1:8080/sandbox/fhir" and claims["purpose"] == "tour"
    refused = runner.invoke(main, ["token", "--sandbox", "--scope", "patient/*.rs", "--patient", "x"], env=env)
    assert refused.exit_code != 0 and "system/" in refused.output


def test_the_settings_that_turn_the_sandbox_on(tmp_path):
    assert Settings().sandbox_enabled  # the demo
    assert not Settings(database_url="sqlite:///x.db").sandbox_enabled  # off unless configured
    with pytest.raises(ConfigError, match="its own key"):
        Settings(database_url="sqlite:///x.db", sandbox="on").validate()
    assert Settings(database_url="sqlite:///x.db", sandbox="on", sandbox_key="ab" * 32).validate().sandbox_enabled
    for path in ("/fhir/sandbox", "sandbox", "/sandbox/"):
        with pytest.raises(ConfigError, match="sandbox_path"):
            Settings(sandbox_path=path).validate()
    settings = Settings(base_url="https://ehr.example.org/api/fhir", sandbox_path="/deid/fhir")
    assert settings.sandbox_base_url == "https://ehr.example.org/api/deid/fhir"


def test_introspected_tokens_are_told_apart_by_audience(monkeypatch):
    from facade.access.tokens import IntrospectionValidator
    from facade.errors import Unauthorized

    answers = {
        "sandbox": {"active": True, "exp": 2**40, "aud": SANDBOX_BASE},
        "identified": {"active": True, "exp": 2**40, "aud": BASE},
        "no-aud": {"active": True, "exp": 2**40},
    }
    monkeypatch.setattr(IntrospectionValidator, "_introspect", lambda self, token: answers[token])
    sandbox = IntrospectionValidator("https://idp.example/introspect", None, None, audiences=(SANDBOX_BASE,))
    identified = IntrospectionValidator("https://idp.example/introspect", None, None, refused_audiences=(SANDBOX_BASE,))
    assert sandbox.validate("sandbox") and identified.validate("identified") and identified.validate("no-aud")
    for validator, token in ((sandbox, "identified"), (sandbox, "no-aud"), (identified, "sandbox")):
        with pytest.raises(Unauthorized):
            validator.validate(token)


def test_serve_stops_on_a_policy_mistake_and_names_its_place(demo_path, tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("policy: x\ntitle: X\ndates: year\nresources:\n  Patient:\n    elements:\n      name: keep\n")
    env = {"XDG_DATA_HOME": str(tmp_path), "FHIR_FACADE_DEMO_PATH": demo_path, "FHIR_FACADE_SANDBOX_POLICY": str(bad)}
    result = CliRunner().invoke(main, ["serve", "--port", "1"], env=env)
    assert result.exit_code != 0 and f"{bad}:7:7: Patient.name (HumanName)" in result.output
