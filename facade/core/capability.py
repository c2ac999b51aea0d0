"""The CapabilityStatement, generated from what the mapping really supports.

Nothing is advertised that the server does not do: resource types, interactions
and search parameters all come from the adapters' own declarations (the service's
catalogues), and the control parameters from the parsers' own table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from facade import __version__
from facade.search import control
from facade.search.docref import DEFINITION as DOCREF
from facade.search.includes import ANY_TARGET
from facade.search.params import SearchParamDef

Catalogues = Mapping[str, Mapping[str, SearchParamDef]]
BULK = "http://hl7.org/fhir/uv/bulkdata"

# Canonical definitions for search parameters the mappings commonly bind.
_STANDARD = {
    "_id": "http://hl7.org/fhir/SearchParameter/Resource-id",
    "_lastUpdated": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    ("Patient", "identifier"): "http://hl7.org/fhir/SearchParameter/Patient-identifier",
    ("Patient", "name"): "http://hl7.org/fhir/SearchParameter/Patient-name",
    ("Patient", "family"): "http://hl7.org/fhir/SearchParameter/individual-family",
    ("Patient", "given"): "http://hl7.org/fhir/SearchParameter/individual-given",
    ("Patient", "birthdate"): "http://hl7.org/fhir/SearchParameter/individual-birthdate",
    ("Patient", "gender"): "http://hl7.org/fhir/SearchParameter/individual-gender",
    ("Observation", "patient"): "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ("Observation", "subject"): "http://hl7.org/fhir/SearchParameter/Observation-subject",
    ("Observation", "category"): "http://hl7.org/fhir/SearchParameter/Observation-category",
    ("Observation", "code"): "http://hl7.org/fhir/SearchParameter/clinical-code",
    ("Observation", "date"): "http://hl7.org/fhir/SearchParameter/clinical-date",
    ("Observation", "status"): "http://hl7.org/fhir/SearchParameter/Observation-status",
}


# Search parameter combinations US Core 6.1 servers are asked to support (SHALL and SHOULD), by type.
# Every declared parameter combines with every other (the clauses are ANDed in one statement), so
# each combination whose parameters a type declares is listed for it, and only those.
US_CORE_COMBINATIONS: dict[str, list[tuple[str, ...]]] = {
    "AllergyIntolerance": [("patient", "clinical-status")],
    "CarePlan": [
        ("patient", "category"),
        ("patient", "category", "date"),
        ("patient", "category", "status"),
        ("patient", "category", "status", "date"),
    ],
    "CareTeam": [("patient", "role"), ("patient", "status")],
    "Condition": [
        ("patient", "abatement-date"),
        ("patient", "asserted-date"),
        ("patient", "category"),
        ("patient", "clinical-status"),
        ("patient", "code"),
        ("patient", "onset-date"),
        ("patient", "recorded-date"),
        ("patient", "category", "clinical-status"),
        ("patient", "category", "encounter"),
    ],
    "Device": [("patient", "status"), ("patient", "type")],
    "DiagnosticReport": [
        ("patient", "category"),
        ("patient", "code"),
        ("patient", "status"),
        ("patient", "category", "date"),
        ("patient", "code", "date"),
    ],
    "DocumentReference": [
        ("patient", "category"),
        ("patient", "status"),
        ("patient", "type"),
        ("patient", "category", "date"),
        ("patient", "type", "period"),
    ],
    "Encounter": [
        ("class", "patient"),
        ("date", "patient"),
        ("patient", "discharge-disposition"),
        ("patient", "location"),
        ("patient", "status"),
        ("patient", "type"),
    ],
    "Goal": [("patient", "description"), ("patient", "lifecycle-status"), ("patient", "target-date")],
    "Immunization": [("patient", "date"), ("patient", "status")],
    "MedicationDispense": [("patient", "status"), ("patient", "status", "type")],
    "MedicationRequest": [
        ("patient", "intent"),
        ("patient", "intent", "authoredon"),
        ("patient", "intent", "encounter"),
        ("patient", "intent", "status"),
    ],
    "Observation": [
        ("patient", "category"),
        ("patient", "code"),
        ("patient", "category", "date"),
        ("patient", "category", "status"),
        ("patient", "code", "date"),
    ],
    "Patient": [("birthdate", "family"), ("birthdate", "name"), ("death-date", "family"), ("family", "gender"), ("gender", "name")],
    "Procedure": [("patient", "date"), ("patient", "status"), ("patient", "code", "date")],
    "QuestionnaireResponse": [("patient", "authored"), ("patient", "questionnaire"), ("patient", "status")],
    "RelatedPerson": [("patient", "name")],
    "ServiceRequest": [
        ("patient", "category"),
        ("patient", "code"),
        ("patient", "status"),
        ("patient", "category", "authored"),
        ("patient", "code", "authored"),
    ],
}
COMBINATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"


def _combinations(resource_type: str, declared: Mapping[str, SearchParamDef]) -> list[dict]:
    return [
        {"url": COMBINATION, "extension": [{"url": "required", "valueString": name} for name in names]}
        for names in US_CORE_COMBINATIONS.get(resource_type, [])
        if all(name in declared for name in names)
    ]


def _includes(catalogues: Catalogues) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per type, the ``_include`` and ``_revinclude`` values the server follows: every declared
    reference parameter whose target is served (``Type:param:Target``, as the parser accepts)."""
    forward: dict[str, list[str]] = {t: [] for t in catalogues}
    reverse: dict[str, list[str]] = {t: [] for t in catalogues}
    for source, catalogue in catalogues.items():
        for name, definition in catalogue.items():
            if definition.type != "reference":
                continue
            targets = [t for t in sorted(catalogues) if definition.refers_to(t)]
            for target in (t for t in targets if t in catalogues):
                forward[source].append(f"{source}:{name}:{target}" if definition.target in ANY_TARGET else f"{source}:{name}")
                reverse[target].append(f"{source}:{name}")
    return forward, reverse


def capability_statement(
    catalogues: Catalogues,
    base_url: str,
    published: str,
    security: Callable[[str], dict] | None = None,
    *,
    terminology: bool = False,
    bulk: bool = False,
    profiles: Mapping[str, list[str]] | None = None,
) -> dict:
    """``security``: base URL → ``rest.security`` (how clients get tokens), when authorization is on;
    ``terminology``: whether the terminology endpoints are served; ``bulk``: whether ``$export`` is;
    ``profiles``: per type, the profiles its resources claim (``supportedProfile``)."""
    resources = []
    includes, revincludes = _includes(catalogues)
    for resource_type, catalogue in catalogues.items():
        params = []
        for name, definition in catalogue.items():
            param: dict = {"name": name, "type": definition.type}
            canonical = _STANDARD.get(name) or _STANDARD.get((resource_type, name))
            if canonical:
                param["definition"] = canonical
            if definition.description:
                param["documentation"] = definition.description
            params.append(param)
        entry: dict = {
            **({"extension": combinations} if (combinations := _combinations(resource_type, catalogue)) else {}),
            "type": resource_type,
            **({"supportedProfile": list(profiles[resource_type])} if profiles and profiles.get(resource_type) else {}),
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            "conditionalCreate": False,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": params,
        }
        if includes[resource_type]:
            entry["searchInclude"] = includes[resource_type]
        if revincludes[resource_type]:
            entry["searchRevInclude"] = revincludes[resource_type]
        if resource_type == "Patient":
            entry["operation"] = [{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
        if resource_type == "DocumentReference":
            entry["operation"] = [{"name": "docref", "definition": DOCREF}]
        if bulk and resource_type in ("Patient", "Group"):
            operation = {"name": "export", "definition": f"{BULK}/OperationDefinition/{resource_type.lower()}-export"}
            entry["operation"] = [*entry.get("operation", []), operation]
        resources.append(entry)
    if terminology:
        resources += _terminology_resources()
    statement: dict = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "fhir-facade",
        "kind": "instance",
        "software": {"name": "fhir-facade", "version": __version__},
        "implementation": {"description": "FHIR R4 façade over a legacy EHR database", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                **({"security": security(base_url)} if security else {}),
                "resource": resources,
                "searchParam": [
                    {"name": c.name, "type": "number" if c.type == "integer" else c.type, "documentation": c.description}
                    for c in control.SEARCH.values()
                    if c.name not in ("_include", "_revinclude", "_cursor")
                ],
            }
        ],
    }
    if bulk:  # Bulk Data Access 2.0: system, Patient and Group $export
        statement["instantiates"] = [f"{BULK}/CapabilityStatement/bulk-data"]
        statement["rest"][0]["operation"] = [{"name": "export", "definition": f"{BULK}/OperationDefinition/export"}]
    return statement


# Terminology endpoints (facade/web/terminology_routes.py), served when the mapping names crosswalks.
_TERMINOLOGY = {
    "ConceptMap": (["url", "source", "target", "source-system", "target-system"], [("translate", "ConceptMap-translate")]),
    "CodeSystem": (["url"], [("lookup", "CodeSystem-lookup")]),
    "ValueSet": ([], [("expand", "ValueSet-expand")]),
}


def _terminology_resources() -> list[dict]:
    return [
        {
            "type": type_name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": name, "type": "uri"} for name in params],
            "operation": [
                {"name": name, "definition": f"http://hl7.org/fhir/OperationDefinition/{definition}"} for name, definition in operations
            ],
        }
        for type_name, (params, operations) in _TERMINOLOGY.items()
    ]
