"""FHIR terminology endpoints under /fhir: ConceptMap, CodeSystem, ValueSet and their operations.

Thin like the resource routes, and held to the same rule: a valid access token (they hold
no patient data, so no resource scope is asked for), and an audit record. Read the request
(query string, or a ``Parameters`` body on POST), call
:class:`facade.core.terminology.TerminologyService`, render the dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint

from facade.core.bundle import assemble
from facade.core.service import Result
from facade.core.terminology import TerminologyService
from facade.errors import InvalidRequest, UnsupportedMediaType
from facade.web import audit_hook, openapi_docs
from facade.web.auth import request_access
from facade.web.bodies import json_body
from facade.web.rendering import fhir_response, negotiate
from facade.web.routes import public_base
from facade.web.state import facade_state

_JSON = ("application/fhir+json", "application/json", "application/json+fhir")
_BOOLEANS = {"true": True, "false": False}
_OK = {"200": openapi_docs.ok("FHIR resource")}
_ERRORS = {code: openapi_docs.OUTCOME for code in ("400", "401", "404", "406", "413", "415", "503")}


def _terminology() -> TerminologyService:
    terminology = facade_state().terminology
    assert terminology is not None  # the routes exist only when it does
    return terminology


def _respond(body: dict) -> Response:
    return fhir_response(body, media_type=negotiate(request), pretty=request.args.get("_pretty") == "true")


def _bundle(resources: list[dict]) -> dict:
    path = request.path.removeprefix("/fhir/")
    params = [(k, v) for k, v in request.args.items(multi=True) if k not in ("_format", "_pretty")]
    return assemble(public_base(), path, params, None, None, resources, [], [], total=len(resources))


def _guarded(interaction: str, resource_type: str, answer: Callable[..., dict], **route_args: str) -> Any:
    """Token first, audit always (as every FHIR route): then the answer."""
    audit_hook.begin(
        interaction,
        resource_type,
        resource_id=route_args.get("resource_id"),
        query=request.query_string.decode(errors="replace") if interaction != "read" else None,
    )
    media = negotiate(request)
    request_access()
    body = answer(**route_args)
    ids = (
        tuple(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body.get("entry", ()))
        if body.get("resourceType") == "Bundle"
        else ()
    )
    audit_hook.done(Result(body, ids))
    return fhir_response(body, media_type=media, pretty=request.args.get("_pretty") == "true")


def _typed(name: str, value: Any) -> Any:
    """A ``Parameters`` value of the type its name takes, or a 400: the operations below
    compare, hash and echo these values, and a JSON object where a string belongs is the
    client's mistake."""
    if name in ("coding", "codeableConcept"):
        expected = "a Coding" if name == "coding" else "a CodeableConcept"
        if not isinstance(value, dict):
            raise InvalidRequest(f"{name} must be {expected}")
        codings = value.get("coding", []) if name == "codeableConcept" else [value]
        if not isinstance(codings, list) or not all(
            isinstance(c, dict) and all(isinstance(c.get(k, ""), str) for k in ("system", "code")) for c in codings
        ):
            raise InvalidRequest(f"{name} must be {expected} whose system and code are strings")
        return value
    if name == "reverse":
        if not isinstance(value, bool | str):
            raise InvalidRequest("reverse must be true or false")
        return value
    if name in ("count", "offset"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidRequest(f"{name} must be a whole number")
        return value
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    return value


def operation_args() -> dict[str, Any]:
    """Operation inputs from the query string (GET) or a FHIR ``Parameters`` body (POST)."""
    if request.method == "GET":
        args: dict[str, Any] = {k: v for k, v in request.args.items() if not k.startswith("_")}
    else:
        if request.mimetype not in _JSON:
            raise UnsupportedMediaType(
                f"POST takes a FHIR Parameters resource as application/fhir+json, not {request.mimetype or 'no content type'}"
            )
        body = json_body(request, f"POST {request.path.rsplit('/', 1)[-1]}")
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters" or not isinstance(body.get("parameter") or [], list):
            raise InvalidRequest("the request body must be a FHIR Parameters resource")
        args = {}
        for parameter in body.get("parameter") or []:
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                raise InvalidRequest("each Parameters.parameter needs a name")
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            args[parameter["name"]] = _typed(parameter["name"], value)
    if isinstance(args.get("coding"), str):  # GET: coding=system|code
        system, _, code = args["coding"].partition("|")
        args["coding"] = {"system": system, "code": code}
    if isinstance(args.get("codeableConcept"), dict) and not args.get("coding"):
        codings = args["codeableConcept"].get("coding") or []
        args["coding"] = codings[0] if codings and isinstance(codings[0], dict) else {}
    if args.get("coding") is not None and not isinstance(args["coding"], dict):
        raise InvalidRequest("coding must be a Coding")
    reverse = args.get("reverse", False)
    if isinstance(reverse, str):
        if reverse not in _BOOLEANS:
            raise InvalidRequest("reverse must be true or false")
        reverse = _BOOLEANS[reverse]
    args["reverse"] = bool(reverse)
    return args


def make_terminology_blueprint() -> Blueprint:
    blp = Blueprint("fhir_terminology", __name__, url_prefix="/fhir", description="FHIR terminology: crosswalks and local code systems")

    def route(
        path: str,
        endpoint: str,
        interaction: str,
        resource_type: str,
        answer: Callable[..., dict],
        summary: str,
        methods: tuple[str, ...] = ("GET",),
    ) -> None:
        def view(**route_args: str) -> Any:
            return _guarded(interaction, resource_type, answer, **route_args)

        view.__name__ = endpoint
        documented = blp.doc(summary=summary, tags=[resource_type], responses={**_OK, **_ERRORS})(view)
        blp.add_url_rule(path, endpoint, documented, methods=["GET"])
        if "POST" in methods:  # the same answer to a Parameters body; its own rule, so its own body schema

            def post_view(**route_args: str) -> Any:
                return _guarded(interaction, resource_type, answer, **route_args)

            post_view.__name__ = f"{endpoint}_post"
            body = openapi_docs.parameters_body("FHIR Parameters: the operation's inputs")
            posted = blp.doc(summary=summary, tags=[resource_type], requestBody=body, responses={**_OK, **_ERRORS})(post_view)
            blp.add_url_rule(path, post_view.__name__, posted, methods=["POST"])

    t = _terminology
    route(
        "/ConceptMap",
        "search_conceptmap",
        "search",
        "ConceptMap",
        lambda: _bundle(t().search_concept_maps(request.args.to_dict())),
        "Search ConceptMaps (url, source, target, source-system, target-system)",
    )
    route(
        "/ConceptMap/$translate",
        "translate",
        "operation",
        "ConceptMap",
        lambda: t().translate(operation_args()),
        "$translate a code with any crosswalk (reverse=true: standard → local)",
        ("GET", "POST"),
    )
    route(
        "/ConceptMap/<fhir_id:resource_id>",
        "read_conceptmap",
        "read",
        "ConceptMap",
        lambda resource_id: t().concept_map(resource_id),
        "Read a ConceptMap (one per crosswalk)",
    )
    route(
        "/ConceptMap/<fhir_id:resource_id>/$translate",
        "translate_instance",
        "operation",
        "ConceptMap",
        lambda resource_id: t().translate(operation_args(), resource_id),
        "$translate with one ConceptMap",
        ("GET", "POST"),
    )
    route(
        "/CodeSystem",
        "search_codesystem",
        "search",
        "CodeSystem",
        lambda: _bundle(t().search_code_systems(request.args.to_dict())),
        "Search the local CodeSystems (url)",
    )
    route(
        "/CodeSystem/$lookup",
        "lookup",
        "operation",
        "CodeSystem",
        lambda: t().lookup(operation_args()),
        "$lookup a local code",
        ("GET", "POST"),
    )
    route(
        "/CodeSystem/<fhir_id:resource_id>",
        "read_codesystem",
        "read",
        "CodeSystem",
        lambda resource_id: t().code_system(resource_id),
        "Read a local CodeSystem",
    )
    route(
        "/ValueSet",
        "search_valueset",
        "search",
        "ValueSet",
        lambda: _bundle(t().value_sets()),
        "List the local ValueSets (one per legacy code table)",
    )
    route(
        "/ValueSet/$expand",
        "expand",
        "operation",
        "ValueSet",
        lambda: t().expand(operation_args()),
        "$expand a local ValueSet by url (filter, offset, count)",
        ("GET", "POST"),
    )
    route(
        "/ValueSet/<fhir_id:resource_id>",
        "read_valueset",
        "read",
        "ValueSet",
        lambda resource_id: t().value_set(resource_id),
        "Read a local ValueSet",
    )
    route(
        "/ValueSet/<fhir_id:resource_id>/$expand",
        "expand_instance",
        "operation",
        "ValueSet",
        lambda resource_id: t().expand(operation_args(), resource_id),
        "$expand a local ValueSet (filter, offset, count)",
        ("GET", "POST"),
    )
    return blp
