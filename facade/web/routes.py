"""FHIR REST routes under /fhir, registered per served resource type.

Routes are thin: collect the request, call the service, render the dict.
Registering each type separately lets the OpenAPI document list the exact
search parameters of each one.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Request, current_app, request
from flask_smorest import Blueprint

from facade.errors import InvalidRequest, UnsupportedMediaType
from facade.search.params import SearchParamDef
from facade.core.service import FhirService
from facade.web.auth import note_result, request_access
from facade.web.rendering import fhir_response, negotiate

FORM = "application/x-www-form-urlencoded"
_RESULT_PARAMS = [
    ("_count", "integer", "Page size; capped at the server maximum"),
    ("_sort", "string", "Comma-separated sortable parameters, '-' for descending"),
    ("_total", "string", "'accurate' to count all matches (costs a COUNT query); default none"),
    ("_summary", "string", "true (summary elements), text, data, count (the total only) or false"),
    ("_elements", "string", "Comma-separated top-level elements to return (the rest are left out, meta.tag SUBSETTED)"),
    ("_include", "string", "Type:param[:Target] — also return the resources the matches refer to (repeatable)"),
    ("_revinclude", "string", "Type:param — also return resources of Type that refer to the matches (repeatable)"),
    ("_cursor", "string", "Paging position; take it from the Bundle's next link, never build it"),
    ("_format", "string", "json, application/json or application/fhir+json"),
]
_OUTCOME = {"description": "OperationOutcome", "content": {"application/fhir+json": {"schema": {"type": "object"}}}}


def _service() -> FhirService:
    return current_app.extensions["fhir_facade"]


def base_url(req: Request) -> str:
    configured = current_app.config.get("FHIR_BASE_URL")
    return configured or req.host_url.rstrip("/") + "/fhir"


def _strict(req: Request) -> bool:
    prefer = req.headers.get("Prefer", "")
    handling = [p.split("=", 1)[1].strip() for p in prefer.split(",") if p.strip().startswith("handling=")]
    return handling[-1] == "strict" if handling else current_app.config["FHIR_STRICT_HANDLING"]


def _pretty(req: Request) -> bool:
    # Looked up in the raw query string first: most requests have none, and parsing it costs.
    return "_pretty" in req.environ.get("QUERY_STRING", "") and req.args.get("_pretty") == "true"


def _matches(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", ()) if e.get("search", {}).get("mode") != "outcome"]


def _param_doc(definition: SearchParamDef, where: str) -> dict:
    return {"in": where, "name": definition.name, "required": False, "schema": {"type": "string"}, "description": f"{definition.type}: {definition.description}".rstrip(": ")}


def make_blueprint(service: FhirService) -> Blueprint:
    blp = Blueprint("fhir", __name__, url_prefix="/fhir", description="FHIR R4 REST API")

    @blp.route("/metadata", methods=["GET"])
    @blp.doc(summary="CapabilityStatement: what this server supports", responses={"200": {"description": "CapabilityStatement"}})
    def metadata():  # noqa: ANN202
        media = negotiate(request)
        return fhir_response(_service().capabilities(base_url(request)), media_type=media, pretty=_pretty(request))

    for resource_type in sorted(service.types):
        _register_type(blp, resource_type, service.adapter.search_params(resource_type))
    if "Patient" in service.types:
        _register_everything(blp)
    return blp


_EVERYTHING_PARAMS = [
    ("_count", "integer", "Page size; capped at the server maximum"),
    ("_since", "string", "Only resources whose meta.lastUpdated is at or after this instant"),
    ("_type", "string", "Comma-separated resource types to return (default: every type in the compartment)"),
    ("_cursor", "string", "Paging position; take it from the Bundle's next link, never build it"),
]


def _operation_pairs(req: Request) -> list[tuple[str, str]]:
    """Query parameters, plus those of a FHIR ``Parameters`` body (POST)."""
    pairs = list(req.args.items(multi=True))
    if not req.content_length:
        return pairs
    if req.mimetype == FORM:
        return pairs + list(req.form.items(multi=True))
    if req.mimetype not in ("application/fhir+json", "application/json"):
        raise UnsupportedMediaType(f"POST $everything takes a FHIR Parameters resource (application/fhir+json), not {req.mimetype or 'no content type'}")
    body = req.get_json(silent=True)
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters" or not isinstance(body.get("parameter", []), list):
        raise InvalidRequest("POST $everything takes a FHIR Parameters resource")
    for parameter in body.get("parameter", []):
        values = [v for k, v in parameter.items() if k.startswith("value")] if isinstance(parameter, dict) else []
        if len(values) != 1 or isinstance(values[0], (dict, list)) or not isinstance(parameter.get("name"), str):
            raise InvalidRequest("Each Parameters.parameter needs a name and one primitive value[x]")
        pairs.append((parameter["name"], str(values[0])))
    return pairs


def _register_everything(blp: Blueprint) -> None:
    def patient_everything(resource_id: str):  # noqa: ANN202
        media = negotiate(request)
        access = request_access(base_url(request))
        bundle = _service().everything(resource_id, _operation_pairs(request), base_url(request), access, strict=_strict(request))
        note_result(_matches(bundle), patient=resource_id)
        return fhir_response(bundle, media_type=media, pretty=_pretty(request))

    docs = [{"in": "query", "name": n, "required": False, "schema": {"type": t}, "description": d} for n, t, d in _EVERYTHING_PARAMS]
    ok = {"description": "searchset Bundle: the Patient and every resource in their compartment", "content": {"application/fhir+json": {"schema": {"type": "object"}}}}
    errors = {"400": _OUTCOME, "401": _OUTCOME, "403": _OUTCOME, "404": _OUTCOME, "406": _OUTCOME, "503": _OUTCOME}
    get = blp.doc(summary="Patient $everything: the patient's record, paged", tags=["Patient"], parameters=docs, responses={"200": ok, **errors})(patient_everything)
    blp.add_url_rule("/Patient/<resource_id>/$everything", "everything_Patient", get, methods=["GET"])

    def patient_everything_post(resource_id: str):  # noqa: ANN202
        return patient_everything(resource_id)

    post = blp.doc(
        summary="Patient $everything with a Parameters body (same results as GET)",
        tags=["Patient"],
        requestBody={"content": {"application/fhir+json": {"schema": {"type": "object", "description": "FHIR Parameters: _count, _since, _type"}}}},
        responses={"200": ok, "415": _OUTCOME, **errors},
    )(patient_everything_post)
    blp.add_url_rule("/Patient/<resource_id>/$everything", "everything_post_Patient", post, methods=["POST"])


def _register_type(blp: Blueprint, resource_type: str, params: dict[str, SearchParamDef]) -> None:
    query_docs = [_param_doc(d, "query") for d in params.values()]
    query_docs += [{"in": "query", "name": n, "required": False, "schema": {"type": t}, "description": d} for n, t, d in _RESULT_PARAMS]

    def read(resource_id: str):  # noqa: ANN202
        media = negotiate(request)
        access = request_access(base_url(request))
        resource = _service().read(resource_type, resource_id, access)
        note_result([resource], patient=resource_id if resource_type == "Patient" else None)
        return fhir_response(resource, media_type=media, pretty=_pretty(request))

    def search():  # noqa: ANN202
        media = negotiate(request)
        access = request_access(base_url(request))
        bundle = _service().search(resource_type, request.args.items(multi=True), base_url(request), access, strict=_strict(request))
        note_result(_matches(bundle))
        return fhir_response(bundle, media_type=media, pretty=_pretty(request))

    def search_post():  # noqa: ANN202
        media = negotiate(request)
        if request.content_length and request.mimetype != FORM:
            raise UnsupportedMediaType(f"POST _search takes {FORM}, not {request.mimetype or 'no content type'}")
        access = request_access(base_url(request))
        pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
        bundle = _service().search(resource_type, pairs, base_url(request), access, strict=_strict(request))
        note_result(_matches(bundle), query=urlencode(pairs))
        return fhir_response(bundle, media_type=media, pretty=_pretty(request))

    ok = {"description": f"searchset Bundle of {resource_type}", "content": {"application/fhir+json": {"schema": {"type": "object"}}}}
    errors = {"400": _OUTCOME, "401": _OUTCOME, "403": _OUTCOME, "404": _OUTCOME, "406": _OUTCOME, "503": _OUTCOME}
    read = blp.doc(summary=f"Read a {resource_type}", tags=[resource_type], responses={"200": {"description": resource_type}, **errors})(read)
    search = blp.doc(summary=f"Search {resource_type}", tags=[resource_type], parameters=query_docs, responses={"200": ok, **errors})(search)
    form_schema = {"type": "object", "properties": {d["name"]: {"type": "string", "description": d["description"]} for d in query_docs}}
    search_post = blp.doc(
        summary=f"Search {resource_type} with a form body (same results as GET)",
        tags=[resource_type],
        requestBody={"content": {FORM: {"schema": form_schema}}},
        responses={"200": ok, "415": _OUTCOME, **errors},
    )(search_post)

    blp.add_url_rule(f"/{resource_type}", f"search_{resource_type}", search, methods=["GET"])
    blp.add_url_rule(f"/{resource_type}/_search", f"search_post_{resource_type}", search_post, methods=["POST"])
    blp.add_url_rule(f"/{resource_type}/<resource_id>", f"read_{resource_type}", read, methods=["GET"])
