"""``Patient/{id}/$everything``: the patient and everything in their compartment, paged.

https://hl7.org/fhir/R4/patient-operation-everything.html

The compartment of each served type is an ordinary search clause
(:mod:`facade.compartment`), so each type is one keyset-paged search like any other.
A page walks the types in a fixed order (the Patient first) and fills up from as many
as it needs; the ``next`` cursor is stateless: the index of the type it stopped in plus
that type's own keyset cursor. Resources outside the compartment that the page's
resources point at (Practitioner, Medication, Organization, Location…) come as
``search.mode = include``, one batched lookup per referenced type per page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from facade.bundle import assemble
from facade.compartment import PATIENT_COMPARTMENT_PARAM, patient_compartment_clause
from facade.errors import InvalidRequest, NotFound, UnsupportedParameter
from facade.includes import Run, fetch_by_id
from facade.search.cursor import decode_cursor, encode_cursor
from facade.search.dates import parse_date_range
from facade.search.includes import ANY_TARGET
from facade.search.params import DateValue, Prefix, SearchClause, SearchParamDef
from facade.search.request import SearchRequest

Catalogues = Mapping[str, Mapping[str, SearchParamDef]]


@dataclass(frozen=True)
class EverythingRequest:
    patient_id: str
    types: tuple[str, ...]  # in paging order, the Patient first
    count: int
    since: str | None = None
    position: tuple[int, tuple | None] = (0, None)  # type index, that type's keyset cursor
    ignored: tuple[str, ...] = ()

    def link_params(self) -> list[tuple[str, str]]:
        params = []
        if self.since:
            params.append(("_since", self.since))
        params.append(("_type", ",".join(self.types)))
        params.append(("_count", str(self.count)))
        return params

    def fingerprint(self) -> str:
        text = "|".join([self.patient_id, ",".join(self.types), self.since or ""])
        return hashlib.blake2s(text.encode(), digest_size=6).hexdigest()


def compartment_types(catalogues: Catalogues) -> list[str]:
    """Served types with a patient compartment the mapping can search, the Patient first."""
    types = [
        t for t, catalogue in catalogues.items()
        if t != "Patient" and PATIENT_COMPARTMENT_PARAM.get(t) in catalogue
    ]
    return ["Patient", *sorted(types)] if "Patient" in catalogues else sorted(types)


def parse_everything(
    patient_id: str,
    pairs: Iterable[tuple[str, str]],
    catalogues: Catalogues,
    *,
    strict: bool,
    default_count: int,
    max_count: int,
) -> EverythingRequest:
    served = compartment_types(catalogues)
    types, count, since, cursor, ignored = served, default_count, None, None, []
    for key, raw in pairs:
        if raw == "" or key in ("_format", "_pretty"):
            continue
        if key == "_count":
            if not raw.isdigit() or int(raw) < 1:
                raise InvalidRequest(f"_count must be a positive integer, got '{raw}'", expression="_count")
            count = min(int(raw), max_count)
        elif key == "_since":
            parse_date_range(raw)  # validates
            since = raw
        elif key == "_type":
            asked = [t.strip() for t in raw.split(",") if t.strip()]
            unknown = [t for t in asked if t not in served]
            if unknown:
                raise InvalidRequest(
                    f"_type: {', '.join(unknown)} not served in the patient compartment (served: {', '.join(served)})",
                    expression="_type",
                )
            types = [t for t in served if t in asked]
        elif key == "_cursor":
            cursor = raw
        elif strict:
            raise UnsupportedParameter(f"Unknown or unsupported $everything parameter '{key}'", expression=key)
        else:
            ignored.append(key)
    request = EverythingRequest(patient_id, tuple(types), count, since, ignored=tuple(ignored))
    if cursor is None:
        return request
    fingerprint, position = decode_cursor(cursor)
    if fingerprint != request.fingerprint() or not position or type(position[0]) is not int or not 0 <= position[0] < len(types):
        raise InvalidRequest("_cursor belongs to a different request; follow the Bundle's links", expression="_cursor")
    return EverythingRequest(patient_id, request.types, count, since, (position[0], tuple(position[1:]) or None), request.ignored)


def everything(run: Run, catalogues: Catalogues, request: EverythingRequest, base_url: str, self_cursor: str | None) -> dict:
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
            referenced.setdefault(catalogues[resource_type][param].target, []).extend(ids)
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
    return assemble(base_url, path, request.link_params(), self_cursor, next_cursor, matches, included, warnings)


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
        name for name, definition in catalogues[resource_type].items()
        if definition.type == "reference"
        and definition.target not in ANY_TARGET
        and definition.target in catalogues
        and definition.target not in PATIENT_COMPARTMENT_PARAM
    ]
