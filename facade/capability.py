"""The CapabilityStatement, generated from what the mapping really supports.

Nothing is advertised that the server does not do: resource types, interactions
and search parameters all come from the adapter's own declarations.
"""

from __future__ import annotations

from facade import __version__
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


def capability_statement(adapter: LegacyAdapter, base_url: str, published: str, security=None) -> dict:  # noqa: ANN001
    """``security``: base URL → ``rest.security`` (how clients get tokens), when authorization is on."""
    resources = []
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
        resources.append(
            {
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
        )
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
                    {"name": "_total", "type": "token", "documentation": "none (default) or accurate"},
                    {"name": "_summary", "type": "token", "documentation": "count only"},
                ],
            }
        ],
    }
