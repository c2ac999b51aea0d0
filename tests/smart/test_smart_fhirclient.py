"""A real SMART client library (fhirclient, the SMART Python client) completes a standalone launch against the server."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from support.smart_flow import PATIENT_USER, LiveServer, make_app, make_settings, register, sign_in

fhirclient = pytest.importorskip("fhirclient.client", reason="fhirclient is not installed (pip install -e '.[test]')")

REDIRECT = "http://localhost:9000/callback"


@pytest.fixture(scope="module")
def live(demo_path, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smart-fhirclient")
    server = LiveServer(lambda base: make_app(make_settings(demo_path, tmp, base_url=base)))
    yield server.app, server
    server.close()


def test_fhirclient_standalone_launch(live):
    app, server = live
    registered = register(app, "public", redirect_uris=[REDIRECT])[0]
    smart = fhirclient.FHIRClient(
        settings={
            "app_id": registered.client_id,
            "api_base": server.base,
            "redirect_uri": REDIRECT,
            "scope": "openid fhirUser offline_access patient/*.rs",
            "launch_to_patient": True,
        }
    )
    assert not smart.ready
    authorize_url = smart.authorize_url  # fhirclient read the endpoints from /metadata (rest.security oauth-uris)
    parts = urlsplit(authorize_url)
    assert parts.path == "/fhir/auth/authorize"
    # the person's part (sign in, consent) through the same app
    params = dict(parse_qsl(parts.query))
    response = sign_in(app.test_client(), params)
    assert response.status_code == 302
    smart.handle_callback(response.headers["Location"])  # fhirclient exchanges the code (PKCE S256)
    assert smart.ready
    assert smart.patient_id == PATIENT_USER[2]
    assert {"patient/*.rs", "launch/patient"} <= set(smart.launch_context["scope"].split())
    patient = smart.patient  # fhirclient reads Patient/<id> with the bearer token
    assert patient.id == PATIENT_USER[2]
    assert smart.server.auth.refresh_token
    assert smart.reauthorize()  # refresh grant through the library
    assert smart.ready
