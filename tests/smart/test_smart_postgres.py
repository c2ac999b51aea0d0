"""The authorization server's state on PostgreSQL: a whole flow, rotation, revocation and replay checks in a per-run schema."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from support.pg_demo import with_search_path
from support.smart_flow import AssertionSigner, decode, exchange, make_app, make_settings, obtain_code, register

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_state_url(postgres_url):
    schema = f"smart_state_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as db:
        db.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield with_search_path(postgres_url, schema)
    with engine.begin() as db:
        db.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="module")
def app(demo_path, tmp_path_factory, pg_state_url):
    application = make_app(make_settings(demo_path, tmp_path_factory.mktemp("smart-pg"), state_url=pg_state_url))
    yield application
    application.extensions["fhir_facade"].audit.close()  # its shipper stops before the schema goes
    application.extensions["fhir_facade"].state_store.dispose()


def test_state_tables_live_in_postgres(app, pg_state_url):
    register(app, "public")
    engine = sa.create_engine(pg_state_url)
    try:
        with engine.connect() as db:
            tables = set(db.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars())
    finally:
        engine.dispose()
    assert {
        "revoked_token",
        "smart_client",
        "smart_authorization_code",
        "smart_refresh_token",
        "smart_assertion_jti",
        "smart_launch",
        "smart_pending",
    } <= tables


def test_code_flow_refresh_rotation_and_revocation_on_postgres(app):
    client = app.test_client()
    public = register(app, "public")[0]
    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient openid fhirUser offline_access patient/*.rs")
    body = exchange(client, code, verifier, public.client_id).get_json()
    assert body["patient"]
    refresh = {"grant_type": "refresh_token", "client_id": public.client_id}
    second = client.post("/fhir/auth/token", data={**refresh, "refresh_token": body["refresh_token"]})
    assert second.status_code == 200
    assert client.post("/fhir/auth/token", data={**refresh, "refresh_token": body["refresh_token"]}).status_code == 400
    token = second.get_json()["access_token"]
    assert client.post("/fhir/auth/revoke", data={"token": token, "client_id": public.client_id}).status_code == 200
    with app.test_request_context():
        assert app.extensions["fhir_facade"].smart.store.is_revoked(decode(app, token)["jti"])
    assert exchange(client, code, verifier, public.client_id).status_code == 400  # one-time code


def test_assertion_replay_cache_on_postgres(app):
    client = app.test_client()
    signer = AssertionSigner()
    backend = register(app, "backend", jwks=signer.jwks(), scope="system/*.rs")[0]
    form = {"grant_type": "client_credentials", "scope": "system/*.rs", **signer.form(backend.client_id)}
    assert client.post("/fhir/auth/token", data=form).status_code == 200
    assert client.post("/fhir/auth/token", data=form).status_code == 400


def test_concurrent_use_of_one_code_succeeds_once(app):
    import threading

    store = app.extensions["fhir_facade"].smart.store
    store.save_code("race-code", "racer", {"scope": "patient/*.rs"}, 60)
    results, start = [], threading.Barrier(4)

    def attempt():
        start.wait()
        results.append(store.consume_code("race-code", "racer"))

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1
