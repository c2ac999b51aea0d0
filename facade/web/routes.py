"""FHIR REST routes under /fhir, registered per served resource type.

Routes are thin: name the interaction (for the audit), check the token, collect the
request, call the service, render its result. Registering each type separately lets the
OpenAPI document list the exact search parameters of each one (facade/web/openapi_docs.py).
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Request, Response, request
from flask_smorest import Blueprint

from facade.core.service import FhirService
from facade.errors import InvalidRequest, UnsupportedMediaType
from facade.web import audit_hook, openapi_docs
from facade.web.auth import request_access
from facade.web.bodies import json_body
from facade.web.conditional import remember_last_modified
from facade.web.rendering import fhir_response, negotiate
from facade.web.state import facade_state

FORM = openapi_docs.FORM


def _service() -> FhirService:
    return facade_state().service


def public_base() -> str:
    """The server's base URL for links: its one identity (Settings.public_base_url)."""
    return facade_state().settings.public_base_url


def _strict(req: Request) -> bool:
    prefer = req.headers.get("Prefer", "")
    handling = [p.split("=", 1)[1].strip() for p in prefer.split(",") if p.strip().startswith("handling=")]
    return handling[-1] == "strict" if handling else facade_state().settings.strict_handling


def _pretty(req: Request) -> bool:
    # Looked up in the raw query string first: most requests have none, and parsing it costs.
    return "_pretty" in req.environ.get("QUERY_STRING", "") and req.args.get("_pretty") == "true"


def _render(body: dict, media: str) -> Response:
    return fhir_response(body, media_type=media, pretty=_pretty(request))


def make_blueprint(service: FhirService) -> Blueprint:
    blp = Blueprint("fhir", __name__, url_prefix="/fhir", description="FHIR R4 REST API")

    @blp.route("/metadata", methods=["GET"])
    @blp.doc(summary="CapabilityStatement: what this server supports", responses={"200": openapi_docs.ok("CapabilityStatement")})
    def metadata() -> Response:
        media = negotiate(request)
        return _render(_service().capabilities(public_base()), media)

    if "Patient" in service.types:
        _register_everything(blp)
    if "DocumentReference" in service.types:
        _register_docref(blp)
    for resource_type in sorted(service.types):
        _register_type(blp, resource_type, service.catalogues[resource_type])
    return blp


def _operation_pairs(req: Request) -> list[tuple[str, str]]:
    """Query parameters, plus those of a FHIR ``Parameters`` body (POST)."""
    pairs = list(req.args.items(multi=True))
    if not req.content_length:
        return pairs
    if req.mimetype == FORM:
        return pairs + list(req.form.items(multi=True))
    if req.mimetype not in ("application/fhir+json", "application/json"):
        raise UnsupportedMediaType(
            f"POST of an operation takes a FHIR Parameters resource (application/fhir+json), not {req.mimetype or 'no content type'}"
        )
    body = json_body(req, "POST $everything")
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters" or not isinstance(body.get("parameter", []), list):
        raise InvalidRequest("POST of an operation takes a FHIR Parameters resource")
    for parameter in body.get("parameter", []):
        values = [v for k, v in parameter.items() if k.startswith("value")] if isinstance(parameter, dict) else []
        if len(values) != 1 or isinstance(values[0], (dict, list)) or not isinstance(parameter.get("name"), str):
            raise InvalidRequest("Each Parameters.parameter needs a name and one primitive value[x]")
        value = values[0]
        pairs.append((parameter["name"], ("true" if value else "false") if isinstance(value, bool) else str(value)))
    return pairs


def _register_everything(blp: Blueprint) -> None:
    def patient_everything(resource_id: str) -> Response:
        audit_hook.begin("everything", "Patient", resource_id=resource_id)
        media = negotiate(request)
        access = request_access()
        result = _service().everything(resource_id, _operation_pairs(request), public_base(), access, strict=_strict(request))
        return _render(audit_hook.done(result).body, media)

    get = blp.doc(**openapi_docs.everything("GET"))(patient_everything)
    blp.add_url_rule("/Patient/<fhir_id:resource_id>/$everything", "everything_Patient", get, methods=["GET"])

    def patient_everything_post(resource_id: str) -> Response:
        return patient_everything(resource_id)

    post = blp.doc(**openapi_docs.everything("POST"))(patient_everything_post)
    blp.add_url_rule("/Patient/<fhir_id:resource_id>/$everything", "everything_post_Patient", post, methods=["POST"])


def _register_docref(blp: Blueprint) -> None:
    def docref() -> Response:
        audit_hook.begin("search", "DocumentReference", query=request.query_string.decode(errors="replace"))
        media = negotiate(request)
        access = request_access()
        result = _service().docref(_operation_pairs(request), public_base(), access, strict=_strict(request))
        return _render(audit_hook.done(result).body, media)

    get = blp.doc(**openapi_docs.docref("GET"))(docref)
    blp.add_url_rule("/DocumentReference/$docref", "docref", get, methods=["GET"])

    def docref_post() -> Response:
        return docref()

    post = blp.doc(**openapi_docs.docref("POST"))(docref_post)
    blp.add_url_rule("/DocumentReference/$docref", "docref_post", post, methods=["POST"])


def _register_type(blp: Blueprint, resource_type: str, params: dict) -> None:
    def read(resource_id: str) -> Response:
        audit_hook.begin("read", resource_type, resource_id=resource_id)
        media = negotiate(request)
        result = _service().read(resource_type, resource_id, request_access())
        remember_last_modified(result.body)
        return _render(audit_hook.done(result).body, media)

    def search() -> Response:
        audit_hook.begin("search", resource_type, query=request.query_string.decode(errors="replace"))
        media = negotiate(request)
        access = request_access()
        result = _service().search(resource_type, request.args.items(multi=True), public_base(), access, strict=_strict(request))
        return _render(audit_hook.done(result).body, media)

    def search_post() -> Response:
        audit_hook.begin("search", resource_type, query=request.query_string.decode(errors="replace"))
        media = negotiate(request)
        if request.content_length and request.mimetype != FORM:
            raise UnsupportedMediaType(f"POST _search takes {FORM}, not {request.mimetype or 'no content type'}")
        access = request_access()
        pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
        audit_hook.begin("search", resource_type, query=urlencode(pairs))
        result = _service().search(resource_type, pairs, public_base(), access, strict=_strict(request))
        return _render(audit_hook.done(result).body, media)

    blp.add_url_rule(
        f"/{resource_type}", f"search_{resource_type}", blp.doc(**openapi_docs.search(resource_type, params))(search), methods=["GET"]
    )
    blp.add_url_rule(
        f"/{resource_type}/_search",
        f"search_post_{resource_type}",
        blp.doc(**openapi_docs.search_post(resource_type, params))(search_post),
        methods=["POST"],
    )
    documented_read = blp.doc(**openapi_docs.read(resource_type))(read)
    blp.add_url_rule(f"/{resource_type}/<fhir_id:resource_id>", f"read_{resource_type}", documented_read, methods=["GET"])
