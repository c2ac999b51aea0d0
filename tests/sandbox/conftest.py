"""The sandbox as deployed (auth_mode builtin, trusting a test token mint), under each shipped policy."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from legacy_adapters.sources.demo.generate import generate
from legacy_adapters.sources.demo.showcase import showcase_patient
from support.sandbox import POLICIES, SANDBOX, sandbox_app
from support.smart_tokens import BASE, TokenMint, bearer

# The sandbox tests walk every resource of their demo under both policies (every search page, every
# patient's $everything, a whole export). The same generator at a quarter of the default size still
# holds every kind of row and identifier, and keeps that exhaustive walk within CI's time; `fhir-facade
# sandbox check` runs the same check over a demo of any size.
SANDBOX_DEMO_PATIENTS = 250


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("sandbox-demo") / "demo.sqlite")
    generate(path, patients=SANDBOX_DEMO_PATIENTS)
    return path


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


@pytest.fixture(scope="module", params=POLICIES)
def policy(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def app(demo_path, mint, policy, tmp_path_factory):
    # Its own state database, hence its own export queue: any app's runner claims any job queued
    # in the database it shares, and one under another policy (or none) rightly fails a sandbox job.
    state_url = "sqlite:///" + str(tmp_path_factory.mktemp(f"sandbox-state-{policy}") / "state.sqlite")
    app = sandbox_app(demo_path, state_url, mint, policy)
    yield app
    app.extensions["fhir_facade"].close()  # its export runner stops with it


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def state(app):
    return app.extensions["fhir_facade"]


@pytest.fixture(scope="module")
def sandbox_headers(mint) -> dict:
    return bearer(mint.token("system/*.rs", aud=SANDBOX, sub="lab-1", client_id="lab-1", purpose="readmission model"))


@pytest.fixture(scope="module")
def identified_headers(mint) -> dict:
    return bearer(mint.token("system/*.rs", aud=BASE))


@pytest.fixture(scope="session")
def legacy_patient(demo_path) -> str:
    """A demo patient with rows of every kind (the legacy id)."""
    engine = sa.create_engine(f"sqlite:///{demo_path}")
    try:
        found = showcase_patient(engine)
    finally:
        engine.dispose()
    assert found is not None
    return found


@pytest.fixture(scope="module")
def patient(state, legacy_patient) -> str:
    """The same patient's pseudonym."""
    return state.sandbox.deid.pseudonym("Patient", legacy_patient)
