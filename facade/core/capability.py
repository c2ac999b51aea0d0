"""The CapabilityStatement, generated from what the mapping really supports.

Nothing is advertised that the server does not do: resource types, interactions
and search parameters all come from the adapter's own declarations.
"""

from __future__ import annotations

from facade import __version__
from facade.search.includes import ANY_TARGET
from legacy_adapters.protocol import LegacyAdapter

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


def _includes(catalogues: dict) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
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


def capability_statement(adapter: LegacyAdapter, base_url: str, published: str, security=None) -> dict:  # noqa: ANN001
    """``security``: base URL → ``rest.security`` (how clients get tokens), when authorization is on."""
    resources = []
    catalogues = {t: adapter.search_params(t) for t in adapter.resource_types()}
    includes, revincludes = _includes(catalogues)
    for resource_type in adapter.resource_types():
        params = []
        for name, definition in adapter.search_params(resource_type).items():
            param: dict = {"name": name, "type": definition.type}
            canonical = _STANDARD.get(name) or _STANDARD.get((resource_type, name))
            if canonical:
                param["definition"] = canonical
            if definition.description:
                param["documentation"] = definition.description
            params.append(param)
        entry: dict = {
            "type": resource_type,
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
            entry["operation"] = [
                {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
            ]
        resources.append(entry)
    resources += _terminology_resources(adapter)
    resources.append(_audit_resource())
    return {
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
                    {"name": "_count", "type": "number", "documentation": "Page size (capped by the server)"},
                    {"name": "_sort", "type": "string", "documentation": "Sort by the parameters marked sortable"},
                    {"name": "_total", "type": "token", "documentation": "none (default; estimate is none too) or accurate"},
                    {"name": "_summary", "type": "token", "documentation": "true, text, data, count or false"},
                    {"name": "_elements", "type": "string", "documentation": "Top-level elements to return"},
                ],
            }
        ],
    }


# Terminology endpoints (facade/web/terminology_routes.py), served when the mapping names crosswalks.
_TERMINOLOGY = {
    "ConceptMap": (["url", "source", "target", "source-system", "target-system"], [("translate", "ConceptMap-translate")]),
    "CodeSystem": (["url"], [("lookup", "CodeSystem-lookup")]),
    "ValueSet": ([], [("expand", "ValueSet-expand")]),
}


def _audit_resource() -> dict:
    """The façade's own audit trail (facade/web/audit_routes.py), for user/ or system/ AuditEvent scopes."""
    from facade.web.audit_routes import CATALOGUE  # the routes own the parameter list

    return {
        "type": "AuditEvent",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [{"name": d.name, "type": d.type, "documentation": d.description} for d in CATALOGUE.values() if not d.name.startswith("_")],
    }


def _terminology_resources(adapter: LegacyAdapter) -> list[dict]:
    if getattr(getattr(adapter, "mapping", None), "terminology", None) is None:
        return []
    return [
        {
            "type": type_name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": name, "type": "uri"} for name in params],
            "operation": [{"name": name, "definition": f"http://hl7.org/fhir/OperationDefinition/{definition}"} for name, definition in operations],
        }
        for type_name, (params, operations) in _TERMINOLOGY.items()
    ]
