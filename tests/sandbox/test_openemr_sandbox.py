"""The sandbox over OpenEMR's real schema (the MariaDB fixture): the same policies, no residual
identifier in search or ``$everything``, references resolving inside the sandbox."""

from __future__ import annotations

import pytest

from facade.app import create_app
from facade.config import Settings
from facade.sandbox.check import check, check_everything
from support.openemr_fixture import MAPPING
from support.sandbox import POLICIES, SANDBOX_KEY

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module", params=POLICIES)
def openemr_state(request, openemr):
    settings = Settings(
        auth_mode="off",
        database_url=openemr[0],
        mapping=MAPPING,
        base_url="http://testserver/fhir",
        sandbox="on",
        sandbox_key=SANDBOX_KEY,
        sandbox_policy=request.param,
    )
    app = create_app(settings)
    yield app
    app.extensions["fhir_facade"].adapter.engine.dispose()


def test_no_residual_identifier_over_openemr(openemr_state):
    state = openemr_state.extensions["fhir_facade"]
    searched = check(state.service, state.sandbox)
    assert searched.findings == [] and searched.resources > 10
    everything = check_everything(state.service, state.sandbox)
    assert everything.findings == [] and everything.resources > 10


def test_references_resolve_inside_the_sandbox(openemr_state):
    client = openemr_state.test_client()
    patients = client.get("/sandbox/fhir/Patient").get_json()["entry"]
    for entry in patients:
        bundle = client.get(f"/sandbox/fhir/Patient/{entry['resource']['id']}/$everything?_count=1000").get_json()
        for resource in (e["resource"] for e in bundle.get("entry", ()) if e["search"]["mode"] != "outcome"):
            for reference in _references(resource):
                assert client.get(f"/sandbox/fhir/{reference}").status_code == 200, reference


def _references(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) and not node["reference"].startswith("#") else []
        return own + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []
