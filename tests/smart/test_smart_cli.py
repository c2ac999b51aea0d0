"""``fhir-facade clients|users|launch|token``: the commands behind the README's SMART section."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import RSAKey

from facade.cli import main
from facade.smart.users import verify_password
from support.smart_flow import AssertionSigner


@pytest.fixture()
def env(tmp_path, demo_path):
    return {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "FHIR_FACADE_STATE_URL": f"sqlite:///{tmp_path}/state.sqlite",
        "FHIR_FACADE_DEMO_PATH": demo_path,
    }


def run(env, *args, **kwargs):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False, **kwargs)


def test_clients_add_list_remove(env, tmp_path):
    added = run(
        env, "clients", "add", "--name", "Growth chart", "--type", "confidential-symmetric", "--redirect-uri", "https://app.example/cb"
    )
    assert added.exit_code == 0, added.output
    client_id = re.search(r"client_id: (\S+)", added.output).group(1)
    secret = re.search(r"client_secret: (\S+)", added.output).group(1)
    listed = run(env, "clients", "list")
    assert client_id in listed.output and "Growth chart" in listed.output
    assert secret not in listed.output and secret not in (tmp_path / "state.sqlite").read_bytes().decode("latin-1")
    assert run(env, "clients", "remove", client_id).exit_code == 0
    assert client_id not in run(env, "clients", "list").output
    assert run(env, "clients", "remove", client_id).exit_code != 0


def test_client_ids_work_as_command_line_arguments(env):
    """Generated ids never start with '-' (the CLI would take one for an option): 200 in a row."""
    from facade.smart.clients import new_client_id

    ids = {new_client_id() for _ in range(200)}
    assert len(ids) == 200 and all(re.fullmatch(r"[0-9a-f]{24}", client_id) for client_id in ids)
    added = run(env, "clients", "add", "--name", "Chart", "--type", "public", "--redirect-uri", "https://app.example/cb")
    client_id = re.search(r"client_id: (\S+)", added.output).group(1)
    assert re.fullmatch(r"[0-9a-f]{24}", client_id)
    assert run(env, "clients", "remove", client_id).exit_code == 0


def test_backend_client_needs_keys_and_scopes(env, tmp_path):
    refused = CliRunner().invoke(main, ["clients", "add", "--name", "Nightly export", "--type", "backend"], env=env)
    assert refused.exit_code != 0 and "jwks" in refused.output
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(AssertionSigner().jwks()))
    no_scope = CliRunner().invoke(main, ["clients", "add", "--name", "x", "--type", "backend", "--jwks-file", str(jwks)], env=env)
    assert no_scope.exit_code != 0 and "--scope" in no_scope.output
    added = run(env, "clients", "add", "--name", "Nightly export", "--type", "backend", "--jwks-file", str(jwks), "--scope", "system/*.rs")
    assert added.exit_code == 0 and "client_secret" not in added.output


def test_token_for_the_demo_is_printed_last_and_verifies(env, tmp_path):
    result = CliRunner().invoke(main, ["token", "--scope", "patient/*.rs", "--patient", "abc"], env=env)
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    key = RSAKey.import_key((tmp_path / "data" / "fhir-facade" / "signing-key.pem").read_bytes())
    claims = jwt.decode(token, key, algorithms=["RS384"]).claims
    assert claims["scope"] == "patient/*.rs" and claims["patient"] == "abc"
    assert claims["iss"] == claims["aud"] == "http://127.0.0.1:8080/fhir"
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize(
    "extra_env",
    [
        {"FHIR_FACADE_DATABASE_URL": "sqlite:///elsewhere.sqlite"},
        {"FHIR_FACADE_SIGNING_KEY_PATH": "/tmp/some-key.pem"},
        {
            "FHIR_FACADE_AUTH_MODE": "external",
            "FHIR_FACADE_EXTERNAL_ISSUER": "https://idp.hospital.test/",
            "FHIR_FACADE_EXTERNAL_JWKS_URL": "https://idp.hospital.test/jwks",
        },
    ],
)
def test_token_is_refused_outside_the_embedded_demo(env, extra_env):
    result = CliRunner().invoke(main, ["token", "--scope", "user/*.rs"], env={**env, **extra_env})
    assert result.exit_code != 0 and "only works with the embedded demo" in result.output


def test_token_checks_its_scopes(env):
    assert CliRunner().invoke(main, ["token", "--scope", "patient/*.rs"], env=env).exit_code != 0  # no --patient
    assert CliRunner().invoke(main, ["token", "--scope", "patient/Observation.xyz", "--patient", "a"], env=env).exit_code != 0


def test_launch_prints_a_usable_launch_value(env):
    added = run(
        env,
        "clients",
        "add",
        "--name",
        "EHR app",
        "--type",
        "public",
        "--redirect-uri",
        "https://app.example/cb",
        "--launch-url",
        "https://app.example/launch",
    )
    client_id = re.search(r"client_id: (\S+)", added.output).group(1)
    result = run(env, "launch", "--patient", "p1", "--encounter", "e1", "--client", client_id)
    assert result.exit_code == 0, result.output
    value = result.output.strip().splitlines()[-1]
    assert f"https://app.example/launch?iss=http%3A%2F%2F127.0.0.1%3A8080%2Ffhir&launch={value}" in result.output
    from facade.smart.store import SmartStore
    from facade.state import StateStore

    assert SmartStore(StateStore(env["FHIR_FACADE_STATE_URL"])).get_launch(value) == {"patient": "p1", "encounter": "e1"}
    assert CliRunner().invoke(main, ["launch"], env=env).exit_code != 0


def test_users_hash_password(env):
    result = CliRunner().invoke(main, ["users", "hash-password"], input="s3cret-pass\ns3cret-pass\n", env=env)
    assert result.exit_code == 0
    stored = result.output.strip().splitlines()[-1]
    assert stored.startswith("scrypt$") and verify_password("s3cret-pass", stored) and not verify_password("other", stored)


def test_clients_revoke_ends_a_users_grants(env, demo_path, tmp_path):
    from support.smart_flow import exchange, make_app, make_settings, obtain_code, register

    (tmp_path / "app").mkdir()
    app = make_app(make_settings(demo_path, tmp_path / "app", state_url=env["FHIR_FACADE_STATE_URL"]))
    client = app.test_client()
    public = register(app, "public")[0]
    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient offline_access patient/*.rs")
    refresh = exchange(client, code, verifier, public.client_id).get_json()["refresh_token"]
    result = run(env, "clients", "revoke", public.client_id, "--user", "maria")
    assert "revoked 1 grant" in result.output
    again = client.post("/fhir/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": public.client_id})
    assert again.status_code == 400


def test_clients_file_registers_clients_with_hashed_secrets(demo_path, tmp_path):
    import hashlib

    from support.smart_flow import basic, exchange, make_app, make_settings, obtain_code

    secret = "a-long-random-secret-from-the-vault"
    clients_file = tmp_path / "clients.toml"
    clients_file.write_text(f'''[[clients]]
client_id = "ward-dashboard"
type = "confidential-symmetric"
name = "Ward dashboard"
redirect_uris = ["http://localhost:9000/callback"]
secret_sha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"
''')
    app = make_app(make_settings(demo_path, tmp_path, clients_file=str(clients_file)))
    client = app.test_client()
    code, verifier, _ = obtain_code(client, "ward-dashboard", "launch/patient patient/*.rs")
    assert exchange(client, code, verifier, None, headers=basic("ward-dashboard", secret)).status_code == 200


def test_a_development_token_opens_the_demo_api_as_the_readme_shows(env, monkeypatch, raw_db):
    """README § Try it: the printed token works against the demo server, and only within its scope."""
    from facade.app import create_app
    from facade.config import load_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    guid = raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' ORDER BY pt_seq LIMIT 1").fetchone()[0]
    token = run(env, "token", "--scope", "patient/Patient.rs", "--patient", guid).output.strip().splitlines()[-1]
    client = create_app(load_settings()).test_client()
    base = {"base_url": "http://127.0.0.1:8080"}
    headers = {"Authorization": f"Bearer {token}", "Host": "127.0.0.1:8080"}
    assert client.get(f"/fhir/Patient/{guid}", headers=headers, **base).status_code == 200
    other = raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' AND pt_guid <> ? LIMIT 1", (guid,)).fetchone()[0]
    assert client.get(f"/fhir/Patient/{other}", headers=headers, **base).status_code == 404
    assert client.get("/fhir/Observation", headers=headers, **base).status_code == 403
    assert client.get(f"/fhir/Patient/{guid}", **base).status_code == 401
