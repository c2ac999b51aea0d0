"""The authorization endpoint and the pages a person sees: sign in, choose a patient, consent.

Flow (every step may run on a different worker; the flow lives in the state database):

1. ``GET|POST /fhir/auth/authorize``: authlib validates client, redirect_uri, scopes and
   PKCE; we check ``aud`` and ``launch``. Errors go back to a verified redirect_uri
   (with ``state``); with no trustworthy redirect_uri, an error page.
2. ``POST /fhir/auth/login``: user name and password.
3. ``POST /fhir/auth/patient``: a clinician picks the patient when the app asked for
   ``launch/patient`` (patients act for themselves; an EHR launch brings its patient).
4. ``POST /fhir/auth/consent``: the requested scopes in plain words; the user may
   untick any, or grant a category instead of a whole resource type.

Each form carries a CSRF token that must equal the flow's cookie (double submit)
and the hash stored with the flow, so a form cannot be posted from another site
nor a flow be finished from another browser.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from flask import Response, make_response, render_template, request

from facade.access.grant import Grant
from facade.access.scopes import ScopeSet
from facade.audit.records import Interaction, rest_record
from facade.errors import InvalidRequest, NotFound
from facade.smart.consent import allowed_choices, describe, has_patient_scopes, narrowings, split_scopes
from facade.smart.server import Smart
from facade.smart.store import digest
from facade.web.smart.oauth import OAuthServer, StoredAuthorizationRequest
from facade.web.state import facade_state

FLOW_LIFETIME = 600
MAX_FAILED_LOGINS = 5  # per sign-in flow; then the app must start again (slows password guessing)
CSRF_COOKIE = "fhir_facade_flow"
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def smart() -> Smart:
    return facade_state().authority


def oauth() -> OAuthServer:
    return facade_state().oauth_server


def authorize() -> Response:
    server = oauth()
    try:
        grant = server.get_consent_grant()
    except OAuth2Error as error:
        smart().emit("failure", request.values.get("client_id"), None, step="authorize", error=error.error)
        if error.redirect_uri:
            return server.handle_error_response(None, error)
        return _page("error.html", 400, message=error.get_error_description() or error.error)
    params = {key: request.values.get(key) for key in request.values}
    params["scope"] = " ".join(split_scopes(params.get("scope")))
    flow, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    smart().store.start_pending(flow, csrf, params, FLOW_LIFETIME)
    response = _page("login.html", 200, flow=flow, csrf=csrf, client=grant.client, error=None)
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=FLOW_LIFETIME, path="/fhir/auth", httponly=True, secure=request.is_secure, samesite="Lax"
    )
    return response


def login() -> Response:
    flow_id, pending, refusal = _flow()
    if refusal:
        return refusal
    user = smart().users.authenticate(request.form.get("username", ""), request.form.get("password", ""))
    if user is None:
        smart().emit("failure", pending["params"].get("client_id"), None, step="login", error="bad_credentials")
        if smart().store.count_failed_login(flow_id) >= MAX_FAILED_LOGINS:
            smart().store.finish_pending(flow_id)
            return _page("error.html", 401, message="Too many failed sign-ins. Start again from the app.")
        client = smart().clients.get(pending["params"].get("client_id"))
        return _page(
            "login.html", 401, flow=flow_id, csrf=request.form["csrf"], client=client, error="Unknown user name or wrong password."
        )
    smart().store.update_pending(flow_id, username=user.username)
    pending["username"] = user.username
    return _next_step(flow_id, pending)


def choose_patient() -> Response:
    flow_id, pending, refusal = _flow(need_user=True)
    if refusal:
        return refusal
    chosen = request.form.get("patient", "").strip()
    if request.form.get("action") == "choose" and chosen:
        try:
            facade_state().service.read_for_system("Patient", chosen)
        except (NotFound, InvalidRequest):
            _audit_picker(pending, Interaction("read", "Patient", resource_id=chosen), 404)
            return _picker(flow_id, error="No such patient.")
        _audit_picker(pending, Interaction("read", "Patient", resource_id=chosen), 200)
        smart().store.update_pending(flow_id, patient=chosen)
        pending["patient"] = chosen
        return _next_step(flow_id, pending)
    return _picker(flow_id, query=request.form.get("q", ""))


def consent() -> Response:
    flow_id, pending, refusal = _flow(need_user=True)
    if refusal:
        return refusal
    params = pending["params"]
    user = smart().users.get(pending["username"])
    if user is None:  # removed from the users file since signing in
        return _page("error.html", 403, message="Sign in again.")
    patient = _patient_in_context(pending, user)
    stored = StoredAuthorizationRequest(smart().fhir_base() + "/auth/authorize", params)
    server = oauth()
    try:
        grant = server.get_consent_grant(stored)
    except OAuth2Error as error:
        return server.handle_error_response(stored, error)
    smart().store.finish_pending(flow_id)
    if request.form.get("decision") != "allow":
        smart().emit("failure", params.get("client_id"), user.username, step="consent", error="access_denied")
        return server.create_authorization_response(stored, grant_user=None, grant=grant)
    offered = _offered(split_scopes(params.get("scope")), user)
    chosen = set(request.form.getlist("scope"))
    granted = [text for text in offered if text in chosen]
    if has_patient_scopes(granted) and not patient:
        return _page("error.html", 400, message="No patient was chosen for the patient-level access requested.")
    launch = smart().store.get_launch(params["launch"]) if params.get("launch") else None
    grant_user = {
        "username": user.username,
        "name": user.name,
        "fhir_user": user.fhir_user,
        "scope": " ".join(granted),
        "patient": patient if (has_patient_scopes(granted) or {"launch", "launch/patient"} & set(granted)) else None,
        "encounter": (launch or {}).get("encounter") if {"launch", "launch/encounter"} & set(granted) else None,
        "ehr_launch": launch is not None,
    }
    return server.create_authorization_response(stored, grant_user=grant_user, grant=grant)


def _next_step(flow_id: str, pending: dict) -> Response:
    user = smart().users.get(pending["username"])
    if user is None:
        return _page("error.html", 403, message="Sign in again.")
    requested = split_scopes(pending["params"].get("scope"))
    needs_patient = "launch/patient" in requested or has_patient_scopes(requested)
    launch = pending["params"].get("launch")
    context = smart().store.get_launch(launch) if launch else None
    if user.patient and context and context.get("patient") not in (None, user.patient):
        return _page("error.html", 403, message="This launch is for another patient.")
    if needs_patient and not _patient_in_context(pending, user):
        return _picker(flow_id)
    client = smart().clients.get(pending["params"].get("client_id"))
    items = []
    for text in _offered(requested, user):
        if text in requested:
            items.append(
                {
                    "scope": text,
                    "text": describe(text),
                    "checked": True,
                    "narrowings": [{"scope": s, "text": label} for s, label in narrowings(text)],
                }
            )
    refused = [text for text in requested if text not in _offered(requested, user)]
    return _page(
        "consent.html",
        200,
        flow=flow_id,
        csrf=request.form["csrf"],
        client=client,
        user=user,
        items=items,
        refused=refused,
        patient=_patient_in_context(pending, user),
    )


def _offered(requested: list[str], user: Any) -> list[str]:
    """What this user may grant: the request and its category narrowings, minus user/ scopes for patients."""
    choices = [text for text in allowed_choices(requested) if text not in requested]
    choices = requested + sorted(choices)
    if user.patient:  # a patient signs in for their own record only
        choices = [text for text in choices if not text.startswith("user/")]
    return choices


def _patient_in_context(pending: dict, user: Any) -> str | None:
    if user is not None and user.patient:
        return user.patient
    launch = pending["params"].get("launch")
    context = smart().store.get_launch(launch) if launch else None
    if context and context.get("patient"):
        return context["patient"]
    return pending.get("patient")


def _picker(flow_id: str, query: str = "", error: str | None = None) -> Response:
    params = [("_count", "20")] + ([("name", query)] if query else [])
    # The picker runs for a signed-in clinician before any token exists: it lists patients
    # unrestricted, and what it showed whom is audited like any search.
    patients = []
    found = facade_state().service.search_for_system("Patient", params)
    for resource in found:
        name = (resource.get("name") or [{}])[0]
        label = " ".join(name.get("given", []) + [name.get("family", "")]).strip() or resource["id"]
        patients.append({"id": resource["id"], "label": label, "birth_date": resource.get("birthDate", "")})
    pending = smart().store.get_pending(flow_id) or {}
    _audit_picker(pending, Interaction("search", "Patient", query=urlencode(params)), 200, tuple(f"Patient/{r['id']}" for r in found))
    return _page("patient.html", 200, flow=flow_id, csrf=request.form["csrf"], patients=patients, query=query, error=error)


def _audit_picker(pending: dict, interaction: Interaction, status: int, ids: tuple[str, ...] = ()) -> None:
    """The patient picker's reads, in the audit trail: who (the signed-in user, for which app) saw what."""
    params = pending.get("params") or {}
    grant = Grant(scopes=ScopeSet((), (), ()), client_id=params.get("client_id"), subject=pending.get("username"))
    record = rest_record(interaction, status, grant, ids=ids, source=request.remote_addr)
    facade_state().audit.append({**record, "step": "patient-picker"})


def _flow(need_user: bool = False) -> tuple[str, Any, Response | None]:
    """(flow id, pending flow, None) for a genuine form post of a live flow; else (.., .., error page)."""
    flow_id = request.form.get("flow", "")
    csrf = request.form.get("csrf", "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    pending = smart().store.get_pending(flow_id) if flow_id else None
    if pending is None:
        return flow_id, None, _page("error.html", 400, message="This sign-in has expired. Start again from the app.")
    if not (csrf and hmac.compare_digest(csrf, cookie) and hmac.compare_digest(digest(csrf), pending["csrf_hash"])):
        return flow_id, None, _page("error.html", 403, message="This form was not sent from this sign-in page.")
    if need_user and not pending["username"]:
        return flow_id, None, _page("error.html", 403, message="Sign in first.")
    return flow_id, pending, None


def _page(template: str, status: int, **context: Any) -> Response:
    response = make_response(render_template(f"smart/{template}", **context), status)
    response.headers.update(_PAGE_HEADERS)
    return response
