"""What the OpenAPI document says about each FHIR route: parameters, bodies, responses.

Kept apart from the routes so they stay thin; the control parameters come from the parsers'
own table (facade/search/control.py), the search parameters from the mapping's catalogue.
"""

from __future__ import annotations

from facade.search import control
from facade.search.params import SearchParamDef

FORM = "application/x-www-form-urlencoded"
FHIR_JSON = "application/fhir+json"
_OBJECT = {"type": "object"}
OUTCOME = {"description": "OperationOutcome", "content": {FHIR_JSON: {"schema": _OBJECT}}}
ERRORS = {code: OUTCOME for code in ("400", "401", "403", "404", "406", "503")}


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


def ok(description: str) -> dict:
    return {"description": description, "content": {FHIR_JSON: {"schema": _OBJECT}}}


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
    body = {"type": "object", "description": "FHIR Parameters: _count, _since, _type"}
    return {
        "summary": "Patient $everything with a Parameters body (same results as GET)",
        "tags": ["Patient"],
        "requestBody": {"content": {FHIR_JSON: {"schema": body}}},
        "responses": {"200": bundle, "415": OUTCOME, **ERRORS},
    }


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
    return {"200": done, "202": running, "500": OUTCOME, **ERRORS}


def bulk_cancel() -> dict:
    return {"202": OUTCOME, **ERRORS}


def bulk_file() -> dict:
    return {
        "200": {"description": "NDJSON, one resource per line", "content": {"application/fhir+ndjson": {"schema": {"type": "string"}}}},
        **ERRORS,
    }
