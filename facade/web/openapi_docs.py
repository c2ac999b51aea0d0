"""What the OpenAPI document says about each FHIR route: parameters, bodies, responses.

Kept apart from the routes so they stay thin; the control parameters come from the parsers'
own table (facade/search/control.py), the search parameters from the mapping's catalogue.
"""

from __future__ import annotations

from facade.search import control
from facade.search.docref import PARAMETERS as DOCREF_PARAMETERS
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
