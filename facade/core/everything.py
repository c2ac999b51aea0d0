"""``Patient/{id}/$everything``: the patient and everything in their compartment, paged.

https://hl7.org/fhir/R4/patient-operation-everything.html

The compartment of each served type is an ordinary search clause
(:mod:`facade.search.compartment`), so each type is one keyset-paged search like any other.
A page walks the types in a fixed order (the Patient first) and fills up from as many
as it needs; the ``next`` cursor is stateless: the index of the type it stopped in plus
that type's own keyset cursor. Resources outside the compartment that the page's
resources point at (Practitioner, Medication, Organization, Location…) come as
``search.mode = include``, one batched lookup per referenced type per page.
"""

from __future__ import annotations

from collections.abc import Mapping

from facade.core.bundle import assemble
from facade.core.includes import Run, fetch_by_id
from facade.errors import NotFound
from facade.search.compartment import PATIENT_COMPARTMENT_PARAM, patient_compartment_clause
from facade.search.cursor import encode_cursor
from facade.search.dates import parse_date_range
from facade.search.everything import EverythingRequest
from facade.search.includes import ANY_TARGET, Catalogues
from facade.search.params import DateValue, Prefix, SearchClause, SearchParamDef
from facade.search.request import SearchRequest


def everything(run: Run, catalogues: Catalogues, request: EverythingRequest, base_url: str) -> dict:
    """One page of ``$everything``; ``run`` is the service's single query path."""
    index, keyset = request.position
    types = request.types
    matches: list[dict] = []
    referenced: dict[str, list[str]] = {}
    patient_seen = False
    next_position: tuple | None = None
    while index < len(types) and len(matches) < request.count:
        resource_type = types[index]
        search = SearchRequest(
            resource_type,
            clauses=_clauses(resource_type, catalogues[resource_type], request),
            count=request.count - len(matches),
            cursor=keyset,
            references=tuple(_outside_references(catalogues, resource_type)),
        )
        page = run(search)
        if resource_type == "Patient" and keyset is None and request.since is None:
            if not page.resources:
                raise NotFound(f"Patient/{request.patient_id} is not known")
            patient_seen = True
        matches += page.resources
        for param, ids in page.references.items():
            referenced.setdefault(catalogues[resource_type][param].target or param, []).extend(ids)
        if page.next_cursor is not None:
            next_position = (index, *page.next_cursor)
            break
        index, keyset = index + 1, None
    else:
        if index < len(types):
            next_position = (index,)
    if not patient_seen:  # later pages, or a filtered first page, still answer 404 for an unknown patient
        found = run(SearchRequest("Patient", clauses=(patient_compartment_clause("Patient", request.patient_id),), count=1))
        if not found.resources:
            raise NotFound(f"Patient/{request.patient_id} is not known")
    included = [resource for target, ids in referenced.items() for resource in fetch_by_id(run, target, ids)]
    warnings = []
    if request.ignored:
        warnings.append(("not-supported", f"Ignored unknown or unsupported parameters: {', '.join(request.ignored)}"))
    next_cursor = encode_cursor(request.fingerprint(), next_position) if next_position is not None else None
    path = f"Patient/{request.patient_id}/$everything"
    return assemble(base_url, path, request.link_params(), request.cursor_token, next_cursor, matches, included, warnings)


def _clauses(resource_type: str, catalogue: Mapping[str, SearchParamDef], request: EverythingRequest) -> tuple[SearchClause, ...]:
    clauses = [patient_compartment_clause(resource_type, request.patient_id)]
    if request.since and "_lastUpdated" in catalogue:  # a type without it cannot tell, so it is sent whole
        low, high = parse_date_range(request.since)
        clauses.append(SearchClause("_lastUpdated", "date", None, (DateValue(Prefix.GE, low, high),), raw=f"ge{request.since}"))
    return tuple(clauses)


def _outside_references(catalogues: Catalogues, resource_type: str) -> list[str]:
    """Reference parameters pointing at served types outside the compartment (their resources
    would otherwise never appear in $everything)."""
    return [
        name
        for name, definition in catalogues[resource_type].items()
        if definition.type == "reference"
        and definition.target not in ANY_TARGET
        and definition.target in catalogues
        and definition.target not in PATIENT_COMPARTMENT_PARAM
    ]
