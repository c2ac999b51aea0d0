"""FHIR terminology endpoints under /fhir: ConceptMap, CodeSystem, ValueSet and their operations.

Thin like the resource routes: read the request (query string, or a ``Parameters`` body on
POST), call :class:`facade.core.terminology.TerminologyService`, render the dict.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, request
from flask_smorest import Blueprint

from facade.errors import InvalidRequest, UnsupportedMediaType
from facade.web.rendering import fhir_response, negotiate
from facade.web.routes import base_url
from facade.core.terminology import TerminologyService

_JSON = ("application/fhir+json", "application/json", "application/json+fhir")
_BOOLEANS = {"true": True, "false": False}
_OK = {"200": {"description": "FHIR resource", "content": {"application/fhir+json": {"schema": {"type": "object"}}}}}
_ERRORS = {code: {"description": "OperationOutcome"} for code in ("400", "404", "415")}


def _terminology() -> TerminologyService:
    return current_app.extensions["fhir_facade_terminology"]


def _respond(body: dict):  # noqa: ANN202
    return fhir_response(body, media_type=negotiate(request), pretty=request.args.get("_pretty") == "true")


def _bundle(resources: list[dict]) -> dict:
    base = base_url(request)
    return {
        "resourceType": "Bundle", "type": "searchset", "total": len(resources),
        "link": [{"relation": "self", "url": base + request.full_path.removeprefix("/fhir").rstrip("?")}],
        "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources],
    }


def operation_args() -> dict[str, Any]:
    """Operation inputs from the query string (GET) or a FHIR ``Parameters`` body (POST)."""
    if request.method == "GET":
        args: dict[str, Any] = {k: v for k, v in request.args.items() if not k.startswith("_")}
    else:
        if request.mimetype not in _JSON:
            raise UnsupportedMediaType(f"POST takes a FHIR Parameters resource as application/fhir+json, not {request.mimetype or 'no content type'}")
        try:
            body = orjson.loads(request.get_data())
        except orjson.JSONDecodeError:
            raise InvalidRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise InvalidRequest("the request body must be a FHIR Parameters resource")
        args = {}
        for parameter in body.get("parameter") or []:
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                raise InvalidRequest("each Parameters.parameter needs a name")
            value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            args[parameter["name"]] = value
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

    def route(path: str, endpoint: str, view, summary: str, methods=("GET",), tag: str = "Terminology") -> None:  # noqa: ANN001
        documented = blp.doc(summary=summary, tags=[tag], responses={**_OK, **_ERRORS})(view)
        blp.add_url_rule(path, endpoint, documented, methods=list(methods))

    route("/ConceptMap", "search_conceptmap", lambda: _respond(_bundle(_terminology().search_concept_maps(request.args.to_dict()))),
          "Search ConceptMaps (url, source, target, source-system, target-system)", tag="ConceptMap")
    route("/ConceptMap/$translate", "translate", lambda: _respond(_terminology().translate(operation_args())),
          "$translate a code with any crosswalk (reverse=true: standard → local)", ("GET", "POST"), "ConceptMap")
    route("/ConceptMap/<map_id>", "read_conceptmap", lambda map_id: _respond(_terminology().concept_map(map_id)),
          "Read a ConceptMap (one per crosswalk)", tag="ConceptMap")
    route("/ConceptMap/<map_id>/$translate", "translate_instance", lambda map_id: _respond(_terminology().translate(operation_args(), map_id)),
          "$translate with one ConceptMap", ("GET", "POST"), "ConceptMap")
    route("/CodeSystem", "search_codesystem", lambda: _respond(_bundle(_terminology().search_code_systems(request.args.to_dict()))),
          "Search the local CodeSystems (url)", tag="CodeSystem")
    route("/CodeSystem/$lookup", "lookup", lambda: _respond(_terminology().lookup(operation_args())),
          "$lookup a local code", ("GET", "POST"), "CodeSystem")
    route("/CodeSystem/<system_id>", "read_codesystem", lambda system_id: _respond(_terminology().code_system(system_id)),
          "Read a local CodeSystem", tag="CodeSystem")
    route("/ValueSet", "search_valueset", lambda: _respond(_bundle(_terminology().value_sets())),
          "List the local ValueSets (one per legacy code table)", tag="ValueSet")
    route("/ValueSet/$expand", "expand", lambda: _respond(_terminology().expand(operation_args())),
          "$expand a local ValueSet by url (filter, offset, count)", ("GET", "POST"), "ValueSet")
    route("/ValueSet/<set_id>", "read_valueset", lambda set_id: _respond(_terminology().value_set(set_id)),
          "Read a local ValueSet", tag="ValueSet")
    route("/ValueSet/<set_id>/$expand", "expand_instance", lambda set_id: _respond(_terminology().expand(operation_args(), set_id)),
          "$expand a local ValueSet (filter, offset, count)", ("GET", "POST"), "ValueSet")
    return blp


def register_terminology(app, api, adapter) -> None:  # noqa: ANN001
    """Serve the terminology endpoints when the adapter's mapping names crosswalks."""
    mapping = getattr(adapter, "mapping", None)
    terminology = getattr(mapping, "terminology", None)
    if terminology is None:
        return
    from legacy_adapters.code_tables import LegacyCodeTables

    tables = LegacyCodeTables(getattr(adapter, "engine", None), terminology.code_tables)
    app.extensions["fhir_facade_terminology"] = TerminologyService(terminology, tables)
    api.register_blueprint(make_terminology_blueprint())
