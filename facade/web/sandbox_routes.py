"""The de-identified sandbox's routes (``[sandbox] sandbox_path``, default /sandbox/fhir).

Thin, like the identified API's: name the interaction for the audit (marked sandbox, with the
policy and key id; the token's purpose joins them), check the token against the sandbox's own
audience, call the sandbox service (or its exports), render. Only backend (system) tokens issued for the
sandbox are accepted; a token for the identified API is refused here (401), and one for the
sandbox is refused there.
"""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from facade.access.grant import Access
from facade.bulk.exports import counts
from facade.core.service import Result
from facade.errors import Forbidden, UnsupportedMediaType, operation_outcome
from facade.sandbox.export import SandboxExports
from facade.sandbox.service import SandboxService
from facade.smart.discovery import smart_configuration as smart_document
from facade.web import audit_hook, openapi_docs
from facade.web.auth import request_access
from facade.web.bulk_routes import file_response, kickoff_pairs, prefer, status_response
from facade.web.rendering import fhir_response, negotiate
from facade.web.routes import FORM, _operation_pairs, _pretty, _strict
from facade.web.state import facade_state


def _sandbox() -> SandboxService:
    sandbox = facade_state().sandbox
    assert sandbox is not None  # the blueprint is registered only with it
    return sandbox


TAGS = ["Sandbox"]


def _responses(what: str) -> dict:
    return {"200": openapi_docs.ok(what), **openapi_docs.ERRORS}


def _kickoff_doc() -> dict:
    """The export's kick-off, without ``_since``/``_until`` (refused: facade/sandbox/export.py)."""
    doc = openapi_docs.bulk_kickoff()
    return {**doc, "parameters": [p for p in doc["parameters"] if p["name"] not in ("_since", "_until")]}


def _exports() -> SandboxExports:
    exports = facade_state().sandbox_exports
    assert exports is not None  # registered with the sandbox, since exports are always built
    return exports


def _base() -> str:
    return facade_state().settings.sandbox_base_url


def _begin(name: str, resource_type: str, **details: str | None) -> None:
    sandbox = _sandbox()
    audit_hook.begin(name, resource_type, sandbox={"policy": sandbox.policy.name, "key_id": sandbox.key_id}, **details)


def _access() -> Access:
    access = request_access(facade_state().sandbox_auth)
    if access.grant is not None and access.grant.patient:
        raise Forbidden("The sandbox serves system tokens, not a patient's launch context")
    return access


def _render(body: dict) -> Response:
    return fhir_response(body, media_type=negotiate(request), pretty=_pretty(request))


def blueprint(path: str) -> Blueprint:
    blp = Blueprint("sandbox", __name__, url_prefix=path, description="De-identified sandbox (docs/sandbox.md): FHIR R4 through a policy")

    @blp.get("/metadata")
    @blp.doc(summary="The sandbox's CapabilityStatement: only what it offers", tags=TAGS, responses=_responses("CapabilityStatement"))
    def metadata() -> Response:
        return _render(_sandbox().capabilities(_base()))

    @blp.get("/.well-known/smart-configuration")
    @blp.doc(summary="SMART configuration for sandbox (backend) clients", tags=TAGS, responses=_responses("SMART configuration"))
    def smart_configuration() -> Response:
        """Tokens come from the same authorization server (its issuer), for the sandbox's audience."""
        state = facade_state()
        document = smart_document(state.authority.fhir_base(), sorted(_sandbox().types))
        document.update(
            grant_types_supported=["client_credentials"],
            scopes_supported=["system/*.rs", *(f"system/{t}.rs" for t in sorted(_sandbox().types))],
            capabilities=["client-confidential-asymmetric", "permission-v2"],
        )
        return fhir_response(document, media_type="application/json")

    @blp.route("/Patient/<resource_id>/$everything", methods=["GET", "POST"])
    @blp.doc(summary="Patient $everything, de-identified (pseudonymous id)", tags=TAGS, responses=_responses("searchset Bundle"))
    def everything(resource_id: str) -> Response:
        _begin("everything", "Patient", resource_id=resource_id)
        access = _access()
        result = _sandbox().everything(resource_id, _operation_pairs(request), _base(), access, strict=_strict(request))
        return _render(audit_hook.done(result).body)

    @blp.get("/<resource_type>")
    @blp.doc(summary="Search a type the policy serves, by its offered parameters", tags=TAGS, responses=_responses("searchset Bundle"))
    def search(resource_type: str) -> Response:
        _begin("search", resource_type, query=request.query_string.decode(errors="replace"))
        access = _access()
        result = _sandbox().search(resource_type, request.args.items(multi=True), _base(), access, strict=_strict(request))
        return _render(audit_hook.done(result).body)

    @blp.post("/<resource_type>/_search")
    @blp.doc(summary="Search with a form body (same results as GET)", tags=TAGS, responses=_responses("searchset Bundle"))
    def search_post(resource_type: str) -> Response:
        _begin("search", resource_type, query=request.query_string.decode(errors="replace"))
        if request.content_length and request.mimetype != FORM:
            raise UnsupportedMediaType(f"POST _search takes {FORM}, not {request.mimetype or 'no content type'}")
        access = _access()
        pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
        result = _sandbox().search(resource_type, pairs, _base(), access, strict=_strict(request))
        return _render(audit_hook.done(result).body)

    # -- Bulk $export (the export engine's jobs, through the policy: facade/sandbox/export.py) --

    def kickoff(level: str) -> Response:
        query = request.query_string.decode(errors="replace")
        _begin("export", {"system": "*", "patient": "Patient"}[level], query=query)
        access = _access()
        request_url = _base() + request.path.removeprefix(path) + (f"?{query}" if query else "")  # as the client sent it
        job = _exports().kick_off(
            level,
            kickoff_pairs(request),
            access,
            request_url,
            lenient="handling=lenient" in prefer(request),
            post=request.method == "POST",
        )
        audit_hook.done(Result({}, detail={"job": job.id, "types": job.request["types"]}))
        outcome = operation_outcome("information", "informational", f"Export {job.id} accepted; poll the Content-Location")
        return fhir_response(outcome, 202, headers={"Content-Location": f"{_base()}/$export-poll/{job.id}"})

    @blp.route("/$export", methods=["GET", "POST"])
    @blp.doc(summary="Bulk Data kick-off: export every type the sandbox serves, de-identified", tags=TAGS, **_kickoff_doc())
    def export_system() -> Response:
        return kickoff("system")

    @blp.route("/Patient/$export", methods=["GET", "POST"])
    @blp.doc(summary="Bulk Data kick-off: every patient's compartment, de-identified", tags=TAGS, **_kickoff_doc())
    def export_patient() -> Response:
        return kickoff("patient")

    @blp.get("/$export-poll/<job_id>")
    @blp.doc(summary="Bulk Data status: 202 while running, then the manifest", tags=TAGS, responses=openapi_docs.bulk_status())
    def export_status(job_id: str) -> Response:
        _begin("export-status", "*", resource_id=job_id)
        return status_response(_exports().status(job_id, _access(), _base()))

    @blp.delete("/$export-poll/<job_id>")
    @blp.doc(summary="Bulk Data cancel: 202, then the status is 404", tags=TAGS, responses=openapi_docs.bulk_cancel())
    def export_cancel(job_id: str) -> Response:
        _begin("export-cancel", "*", resource_id=job_id)
        job = _exports().cancel(job_id, _access())
        audit_hook.done(Result({}, detail={"job": job.id, "counts": counts(job)}))
        return fhir_response(operation_outcome("information", "informational", f"Export {job.id} cancelled"), 202)

    @blp.get("/$export-file/<job_id>/<name>")
    @blp.doc(summary="Bulk Data output file (NDJSON, de-identified)", tags=TAGS, responses=openapi_docs.bulk_file())
    def export_file(job_id: str, name: str) -> Response:
        _begin("export-download", "*", resource_id=job_id)
        return file_response(job_id, name, *_exports().file(job_id, name, _access()))

    @blp.get("/<resource_type>/<resource_id>")
    @blp.doc(summary="Read, de-identified (pseudonymous id)", tags=TAGS, responses=_responses("The resource"))
    def read(resource_type: str, resource_id: str) -> Response:
        _begin("read", resource_type, resource_id=resource_id)
        access = _access()
        return _render(audit_hook.done(_sandbox().read(resource_type, resource_id, access)).body)

    return blp
