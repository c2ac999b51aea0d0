"""Checklist B (authorization endpoint), consent and sign-in pages, patient picker, EHR launch, granular grants (H9, H10)."""

from __future__ import annotations

import re

import pytest

from facade.smart.launch import create_launch
from support.smart_flow import (
    BASE,
    CLINICIAN,
    PATIENT_USER,
    REDIRECT,
    all_offered_scopes,
    auth_params,
    decode,
    exchange,
    form_fields,
    obtain_code,
    pkce,
    redirect_params,
    register,
    sign_in,
)

PATIENT_ID = PATIENT_USER[2]
STANDALONE = "launch/patient openid fhirUser offline_access patient/*.rs"


def test_b1_get_returns_code_and_exact_state(client, public):
    verifier, challenge = pkce()
    params = auth_params(public.client_id, challenge, STANDALONE, state="s t&a=te/+?")
    answer = redirect_params(sign_in(client, params))
    assert answer["state"] == "s t&a=te/+?"
    assert answer["code"] and "error" not in answer


def test_b2_post_behaves_like_get(client, public):
    code, verifier, _ = obtain_code(client, public.client_id, STANDALONE, method="POST")
    assert exchange(client, code, verifier, public.client_id).status_code == 200


def test_b4_wrong_aud_yields_no_code(client, public):
    _, challenge = pkce()
    params = auth_params(public.client_id, challenge, STANDALONE, aud="https://inferno.healthit.gov/invalid_aud")
    answer = redirect_params(client.get("/fhir/auth/authorize", query_string=params))
    assert answer["error"] == "invalid_request" and "code" not in answer
    assert answer["state"] == params["state"]
    params.pop("aud")
    assert "code" not in redirect_params(client.get("/fhir/auth/authorize", query_string=params))


def test_b6_unregistered_redirect_uri_is_never_redirected_to(client, public):
    _, challenge = pkce()
    for redirect in ("https://evil.example/cb", REDIRECT + "/more", REDIRECT + "?x=1"):
        response = client.get(
            "/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, STANDALONE, redirect_uri=redirect)
        )
        assert response.status_code == 400
        assert "Location" not in response.headers


def test_unknown_client_gets_an_error_page(client):
    _, challenge = pkce()
    response = client.get("/fhir/auth/authorize", query_string=auth_params("no-such-client", challenge, STANDALONE))
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize(
    "change", [{"code_challenge": None, "code_challenge_method": None}, {"code_challenge_method": "plain"}, {"code_challenge_method": None}]
)
def test_pkce_s256_is_required_at_the_authorization_endpoint(client, public, change):
    _, challenge = pkce()
    params = auth_params(public.client_id, challenge, STANDALONE)
    params.update(change)
    params = {key: value for key, value in params.items() if value is not None}
    answer = redirect_params(client.get("/fhir/auth/authorize", query_string=params))
    assert answer["error"] == "invalid_request" and "code" not in answer


@pytest.mark.parametrize("scope", ["patient/Observation.dus", "patient/*.rs system/*.rs", "launch/patient nonsense"])
def test_malformed_system_or_unknown_scopes_are_refused(client, public, scope):
    _, challenge = pkce()
    answer = redirect_params(client.get("/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, scope)))
    assert answer["error"] == "invalid_scope"


def test_wrong_password_and_unknown_user_look_the_same(client, public):
    _, challenge = pkce()
    page = client.get("/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, STANDALONE))
    fields = form_fields(page.get_data(as_text=True))
    wrong = client.post("/fhir/auth/login", data={**fields, "username": "maria", "password": "guess"})
    unknown = client.post("/fhir/auth/login", data={**fields, "username": "nobody", "password": "guess"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Unknown user name or wrong password." in wrong.get_data(as_text=True)
    assert wrong.get_data(as_text=True) == unknown.get_data(as_text=True)


def test_csrf_token_must_match_the_flow_cookie(app, public):
    _, challenge = pkce()
    browser = app.test_client()
    page = browser.get("/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, STANDALONE))
    fields = form_fields(page.get_data(as_text=True))
    client_without_cookie = app.test_client()
    response = client_without_cookie.post("/fhir/auth/login", data={**fields, "username": "maria", "password": "demo-patient"})
    assert response.status_code == 403  # the form was posted from another browser (no flow cookie)
    response = browser.post("/fhir/auth/login", data={**fields, "csrf": "x" * 43, "username": "maria", "password": "demo-patient"})
    assert response.status_code == 403
    response = browser.post("/fhir/auth/consent", data={**fields, "decision": "allow"})
    assert response.status_code == 403  # consent before sign-in


def test_pages_cannot_be_framed_or_cached(client, public):
    _, challenge = pkce()
    page = client.get("/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, STANDALONE))
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


def test_deny_returns_access_denied(client, public):
    _, challenge = pkce()
    params = auth_params(public.client_id, challenge, STANDALONE)
    answer = redirect_params(sign_in(client, params, decision="deny"))
    assert answer["error"] == "access_denied" and answer["state"] == params["state"] and "code" not in answer


def test_consent_shows_scopes_in_plain_words(client, public):
    _, challenge = pkce()
    page = client.get("/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, STANDALONE))
    fields = form_fields(page.get_data(as_text=True))
    html = client.post("/fhir/auth/login", data={**fields, "username": "maria", "password": "demo-patient"}).get_data(as_text=True)
    assert "Read and search all kinds of records for the patient in context" in html
    assert "Keep access while you are away" in html


def test_user_may_grant_fewer_scopes_and_the_token_says_so(client, public):
    def only_observations(html):
        return ["launch/patient", "openid", "fhirUser"]

    scope = "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Condition.rs"
    code, verifier, _ = obtain_code(client, public.client_id, scope, choose=only_observations)
    token = exchange(client, code, verifier, public.client_id).get_json()
    assert token["scope"] == "launch/patient openid fhirUser"
    assert "refresh_token" not in token  # offline_access was unticked


def test_h9_h10_user_may_grant_categories_instead_of_whole_types(client, public):
    requested = "launch/patient openid fhirUser offline_access patient/Condition.rs patient/Observation.rs patient/Patient.rs"
    wanted = [
        "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis",
        "patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern",
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|social-history",
    ]

    def granular(html):
        offered = all_offered_scopes(html)
        assert set(wanted) <= set(offered)
        return ["launch/patient", "openid", "fhirUser", "offline_access", "patient/Patient.rs"] + wanted

    code, verifier, _ = obtain_code(client, public.client_id, requested, choose=granular)
    granted = exchange(client, code, verifier, public.client_id).get_json()["scope"].split()
    assert set(wanted) <= set(granted)
    assert "patient/Condition.rs" not in granted and "patient/Observation.rs" not in granted
    assert "patient/Patient.rs" in granted


def test_h10_group_two_granular_scopes_can_be_requested_directly(client, public):
    requested = [
        "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item",
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|survey",
        "patient/Observation.rs?category=http://hl7.org/fhir/us/core/CodeSystem/us-core-category|sdoh",
    ]
    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient openid fhirUser " + " ".join(requested))
    granted = exchange(client, code, verifier, public.client_id).get_json()["scope"].split()
    assert set(requested) <= set(granted)


def test_consent_cannot_grant_what_was_not_offered(client, public):
    def greedy(html):
        return ["launch/patient", "patient/*.cruds", "user/*.rs", "system/*.rs", "patient/*.rs"]

    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient patient/*.rs", choose=greedy)
    assert exchange(client, code, verifier, public.client_id).get_json()["scope"] == "launch/patient patient/*.rs"


def test_a_patient_is_never_granted_user_level_access(client, public):
    code, verifier, _ = obtain_code(
        client, public.client_id, "launch/patient openid fhirUser user/*.rs patient/*.rs", choose=lambda html: all_offered_scopes(html)
    )
    token = exchange(client, code, verifier, public.client_id).get_json()
    assert "user/*.rs" not in token["scope"].split()
    assert token["patient"] == PATIENT_ID


def test_b5_clinician_standalone_launch_picks_a_patient(client, public, raw_db):
    other = raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg = 'N' AND merged_to_seq IS NULL AND pt_seq = 7").fetchone()[0]
    code, verifier, _ = obtain_code(
        client, public.client_id, "launch/patient openid fhirUser patient/*.rs user/Observation.rs", user=CLINICIAN, patient=other
    )
    token = exchange(client, code, verifier, public.client_id).get_json()
    assert token["patient"] == other
    assert "user/Observation.rs" in token["scope"].split()
    claims = decode(client.application, token["access_token"])
    assert claims["patient"] == other and claims["fhirUser"] == "Practitioner/DR1003" and claims["sub"] == "dr.gonzalez"


def test_picker_refuses_an_unknown_patient(client, public):
    _, challenge = pkce()
    page = client.get("/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, "launch/patient patient/*.rs"))
    fields = form_fields(page.get_data(as_text=True))
    html = client.post("/fhir/auth/login", data={**fields, "username": CLINICIAN[0], "password": CLINICIAN[1]}).get_data(as_text=True)
    assert 'action="patient"' in html and re.search(r'name="patient" value="[0-9a-f-]{36}"', html)
    page = client.post("/fhir/auth/patient", data={**fields, "action": "choose", "patient": "no-such-patient"})
    assert "No such patient." in page.get_data(as_text=True)
    page = client.post("/fhir/auth/consent", data={**fields, "decision": "allow", "scope": ["patient/*.rs"]})
    assert page.status_code == 400  # patient/ access without a patient is not issued


def test_b3_ehr_launch_brings_patient_and_encounter(app, client, public):
    launch = create_launch(app.extensions["fhir_facade"].smart.store, PATIENT_ID, "enc-42")
    code, verifier, _ = obtain_code(
        client, public.client_id, "launch openid fhirUser offline_access user/*.rs patient/*.rs", user=CLINICIAN, extra={"launch": launch}
    )
    token = exchange(client, code, verifier, public.client_id).get_json()
    assert token["patient"] == PATIENT_ID
    assert token["encounter"] == "enc-42"
    assert token["need_patient_banner"] is False
    style = client.get(token["smart_style_url"].removeprefix("http://localhost"))
    assert style.status_code == 200 and style.get_json()["color_background"]


def test_unknown_launch_is_refused(client, public):
    _, challenge = pkce()
    params = auth_params(public.client_id, challenge, "launch openid patient/*.rs", launch="forged")
    assert redirect_params(client.get("/fhir/auth/authorize", query_string=params))["error"] == "invalid_request"


def test_backend_clients_cannot_use_the_authorization_endpoint(app, client):
    from support.smart_flow import AssertionSigner

    backend = register(app, "backend", jwks=AssertionSigner().jwks(), scope="system/*.rs")[0]
    _, challenge = pkce()
    response = client.get("/fhir/auth/authorize", query_string=auth_params(backend.client_id, challenge, "patient/*.rs"))
    assert response.status_code == 400 and "code=" not in response.headers.get("Location", "")


def test_aud_is_compared_without_trailing_slash_only(client, public):
    code, verifier, _ = obtain_code(client, public.client_id, STANDALONE, extra={"aud": BASE + "/"})
    assert exchange(client, code, verifier, public.client_id).status_code == 200


def test_a_sign_in_flow_allows_five_wrong_passwords_then_ends(client, public):
    _, challenge = pkce()
    page = client.get("/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, STANDALONE))
    fields = form_fields(page.get_data(as_text=True))
    for attempt in range(4):
        assert client.post("/fhir/auth/login", data={**fields, "username": "maria", "password": f"guess{attempt}"}).status_code == 401
    last = client.post("/fhir/auth/login", data={**fields, "username": "maria", "password": "guess5"})
    assert "Too many failed sign-ins" in last.get_data(as_text=True)
    right = client.post("/fhir/auth/login", data={**fields, "username": "maria", "password": "demo-patient"})
    assert right.status_code == 400  # the flow is gone, even with the right password


def test_what_the_patient_picker_showed_a_clinician_is_audited(app, client, public):
    _, challenge = pkce()
    page = client.get(
        "/fhir/auth/authorize", query_string=auth_params(public.client_id, challenge, "launch/patient openid fhirUser patient/*.rs")
    )
    fields = form_fields(page.get_data(as_text=True))
    picker = client.post("/fhir/auth/login", data={**fields, "username": CLINICIAN[0], "password": CLINICIAN[1]})
    assert picker.status_code == 200 and "patient" in picker.get_data(as_text=True).lower()
    audit = app.extensions["fhir_facade"].audit
    audit.flush()
    shown = next(r for r in audit.search(limit=20) if r.get("step") == "patient-picker")
    assert shown["interaction"] == "search" and shown["subject"] == CLINICIAN[0] and shown["client_id"] == public.client_id
    assert shown["ids"] and all(item.startswith("Patient/") for item in shown["ids"])


LAB_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.mark.parametrize(("form", "searches"), [("read", True), ("*", True), ("rs", True), ("write", False)])
def test_a_v1_scope_with_a_filter_granted_on_the_consent_page_grants_exactly_that(client, public, form, searches):
    """One grammar on both sides: what the user consented to is what the token reaches."""
    scope = f"patient/Observation.{form}?category={LAB_SYSTEM}|laboratory"
    code, verifier, _ = obtain_code(client, public.client_id, f"launch/patient openid {scope}")
    token = exchange(client, code, verifier, public.client_id).get_json()
    assert scope in token["scope"].split()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}

    def count(query: str):
        response = client.get(f"/fhir/Observation?{query}&_summary=count", headers=bearer)
        return response.get_json()["total"] if response.status_code == 200 else response.status_code

    if not searches:  # write only: no read, no search
        assert count("category=laboratory") == 403
        return
    # what the patient's whole-type grant finds in the laboratory category
    code, verifier, _ = obtain_code(client, public.client_id, "launch/patient openid patient/Observation.rs")
    whole = {"Authorization": f"Bearer {exchange(client, code, verifier, public.client_id).get_json()['access_token']}"}
    labs = client.get("/fhir/Observation?category=laboratory&_summary=count", headers=whole).get_json()["total"]
    assert labs > 0
    assert count("category=laboratory") == labs
    assert count("") == labs  # the filter applies to every search
    assert count("category=vital-signs") == 0
