"""What the OpenAPI document says about each FHIR route: parameters, bodies, responses.

Kept apart from the routes so they stay thin; the control parameters come from the parsers'
own table (facade/search/control.py), the search parameters from the mapping's catalogue.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate
from werkzeug.routing import BaseConverter

from facade.search import control
from facade.search.docref import PARAMETERS as DOCREF_PARAMETERS
from facade.search.params import SearchParamDef

FORM = "application/x-www-form-urlencoded"
FHIR_JSON = "application/fhir+json"
FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
_OBJECT = {"type": "object"}
# What a response is served as: FHIR JSON, or plain JSON when the client asks (Accept or _format).
JSON_TYPES = (FHIR_JSON, "application/json")


def content(schema: dict) -> dict:
    return {media: {"schema": schema} for media in JSON_TYPES}


OUTCOME = {"description": "OperationOutcome", "content": content(_OBJECT)}
ERRORS = {code: OUTCOME for code in ("400", "401", "403", "404", "406", "503")}


# -- path ids -------------------------------------------------------------------------------


class FhirIdConverter(BaseConverter):
    """A path id as FHIR defines it (R4 datatypes §2.24.0.1, ``id``). ``/Patient/_search`` is
    then no read of the id "_search": GET there is 405, as for any path without GET."""

    regex = FHIR_ID


def register_converters(app: Any, api: Any) -> None:
    """Before any route: the ``fhir_id`` converter, and its schema in the document."""
    app.url_map.converters["fhir_id"] = FhirIdConverter
    api.register_converter(FhirIdConverter, lambda _converter: {"type": "string", "pattern": f"^{FHIR_ID}$"})


# -- request bodies: FHIR Parameters, as the operations read them (facade/web/bodies.py) -----------


class CodingSchema(Schema):
    system = fields.String()
    code = fields.String()
    display = fields.String()


class CodeableConceptSchema(Schema):
    coding = fields.List(fields.Nested(CodingSchema))
    text = fields.String()


class ParameterSchema(Schema):
    """One ``Parameters.parameter``: a name and one value[x] of the types the operations take."""

    name = fields.String(required=True)
    value_string = fields.String(data_key="valueString")
    value_uri = fields.String(data_key="valueUri")
    value_code = fields.String(data_key="valueCode")
    value_integer = fields.Integer(data_key="valueInteger")
    value_boolean = fields.Boolean(data_key="valueBoolean")
    value_instant = fields.String(data_key="valueInstant")
    value_coding = fields.Nested(CodingSchema, data_key="valueCoding")
    value_codeable_concept = fields.Nested(CodeableConceptSchema, data_key="valueCodeableConcept")


class ParametersSchema(Schema):
    resource_type = fields.String(required=True, validate=validate.OneOf(["Parameters"]), data_key="resourceType")
    parameter = fields.List(fields.Nested(ParameterSchema))


def register_schemas(spec: Any) -> None:
    """Name the body schemas once in the document's components (``api.spec``)."""
    spec.components.schema("Parameters", schema=ParametersSchema)


def parameters_body(description: str) -> dict:
    """The requestBody of an operation that takes a FHIR ``Parameters`` resource."""
    reference = {"$ref": "#/components/schemas/Parameters"}
    return {"description": description, "required": True, "content": {media: {"schema": reference} for media in JSON_TYPES}}


def _control_doc(c: control.Control) -> dict:
    schema: dict = {"type": "integer", "minimum": 0} if c.type == "integer" else {"type": "string"}
    if c.values:
        schema["enum"] = list(c.values)
    elif c.pattern and c.type != "integer":
        schema["pattern"] = c.pattern
    return {"in": "query", "name": c.name, "required": False, "schema": schema, "description": c.description}


def _param_doc(definition: SearchParamDef) -> dict:
    description = f"{definition.type}: {definition.description}".rstrip(": ")
    return {"in": "query", "name": definition.name, "required": False, "schema": {"type": "string"}, "description": description}


def search_parameters(params: dict[str, SearchParamDef]) -> list[dict]:
    return [_param_doc(d) for d in params.values()] + [_control_doc(c) for c in (*control.SEARCH.values(), *control.WEB.values())]


def everything_parameters() -> list[dict]:
    return [_control_doc(c) for c in (*control.EVERYTHING.values(), *control.WEB.values())]


def docref(method: str) -> dict:
    bundle = ok("searchset Bundle of the patient's DocumentReferences, newest first")
    summary = "DocumentReference $docref (US Core): the patient's documents, by care dates and type"
    if method == "GET":
        parameters = [
            {"in": "query", "name": name, "required": name == "patient", "schema": {"type": "string"}, "description": text}
            for name, text in DOCREF_PARAMETERS.items()
        ]
        return {"summary": summary, "tags": ["DocumentReference"], "parameters": parameters, "responses": {"200": bundle, **ERRORS}}
    body = {"type": "object", "description": "FHIR Parameters: " + ", ".join(DOCREF_PARAMETERS)}
    return {
        "summary": summary + " (Parameters body)",
        "tags": ["DocumentReference"],
        "requestBody": {"content": {FHIR_JSON: {"schema": body}}},
        "responses": {"200": bundle, "415": OUTCOME, **ERRORS},
    }


def ok(description: str) -> dict:
    return {"description": description, "content": content(_OBJECT)}


def read(resource_type: str) -> dict:
    return {"summary": f"Read a {resource_type}", "tags": [resource_type], "responses": {"200": ok(resource_type), **ERRORS}}


def search(resource_type: str, params: dict[str, SearchParamDef]) -> dict:
    return {
        "summary": f"Search {resource_type}",
        "tags": [resource_type],
        "parameters": search_parameters(params),
        "responses": {"200": ok(f"searchset Bundle of {resource_type}"), **ERRORS},
    }


def search_post(resource_type: str, params: dict[str, SearchParamDef]) -> dict:
    docs = search_parameters(params)
    form = {"type": "object", "properties": {d["name"]: {**d["schema"], "description": d["description"]} for d in docs}}
    return {
        "summary": f"Search {resource_type} with a form body (same results as GET)",
        "tags": [resource_type],
        "requestBody": {"content": {FORM: {"schema": form}}},
        "responses": {"200": ok(f"searchset Bundle of {resource_type}"), "415": OUTCOME, **ERRORS},
    }


def everything(method: str) -> dict:
    bundle = ok("searchset Bundle: the Patient and every resource in their compartment")
    if method == "GET":
        return {
            "summary": "Patient $everything: the patient's record, paged",
            "tags": ["Patient"],
            "parameters": everything_parameters(),
            "responses": {"200": bundle, **ERRORS},
        }
    return {
        "summary": "Patient $everything with a Parameters body (same results as GET)",
        "tags": ["Patient"],
        "requestBody": _everything_body(),
        "responses": {"200": bundle, "415": OUTCOME, **ERRORS},
    }


def _everything_body() -> dict:
    """A ``Parameters`` resource, or the same inputs as a form (both are read: facade/web/routes.py)."""
    body = parameters_body("FHIR Parameters (_count, _since, _type), or the same as a form")
    docs = everything_parameters()
    form = {"type": "object", "properties": {d["name"]: {**d["schema"], "description": d["description"]} for d in docs}}
    return {**body, "content": {**body["content"], FORM: {"schema": form}}}


# -- Bulk Data $export (facade/web/bulk_routes.py) --------------------------------------------

_HEADER = {"schema": {"type": "string"}}


_KICKOFF = (
    ("_outputFormat", "application/fhir+ndjson (default), application/ndjson or ndjson"),
    ("_type", "Resource types to export, comma-separated (default: every type the token may read)"),
    ("_since", "Only resources whose last update is after this FHIR instant"),
    ("_until", "Only resources whose last update is at or before this FHIR instant"),
    ("_typeFilter", "Type?search queries (repeatable), OR-ed per type"),
    ("_elements", "Top-level elements to keep (resources are tagged SUBSETTED)"),
    ("includeAssociatedData", "LatestProvenanceResources or RelevantProvenanceResources: add the Provenance"),
)


def bulk_kickoff() -> dict:
    accepted = {"description": "Accepted: poll the Content-Location", "headers": {"Content-Location": _HEADER}, **OUTCOME}
    busy = {"description": "Too many exports under way for this client", "headers": {"Retry-After": _HEADER}, **OUTCOME}
    parameters = [{"in": "query", "name": n, "required": False, "schema": {"type": "string"}, "description": d} for n, d in _KICKOFF]
    prefer = {
        "in": "header",
        "name": "Prefer",
        "required": False,
        "schema": {"type": "string"},
        "description": "respond-async[, handling=lenient]",
    }
    return {"parameters": [prefer, *parameters], "responses": {"202": accepted, "429": busy, "415": OUTCOME, **ERRORS}}


def bulk_status() -> dict:
    running = {"description": "In progress", "headers": {"X-Progress": _HEADER, "Retry-After": _HEADER}}
    done = {"description": "The manifest", "headers": {"Expires": _HEADER}, "content": {"application/json": {"schema": _OBJECT}}}
    eager = {"description": "Polled sooner than half the Retry-After after the last poll", "headers": {"Retry-After": _HEADER}, **OUTCOME}
    return {"200": done, "202": running, "429": eager, "500": OUTCOME, **ERRORS}


def bulk_cancel() -> dict:
    return {"202": OUTCOME, **ERRORS}


def bulk_file() -> dict:
    return {
        "200": {"description": "NDJSON, one resource per line", "content": {"application/fhir+ndjson": {"schema": {"type": "string"}}}},
        **ERRORS,
    }
