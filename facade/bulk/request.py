"""Kick-off parameters → a frozen :class:`ExportRequest`, checked before any job exists.

Everything a client can get wrong is found here, at kick-off, as a 400 OperationOutcome (or,
under ``Prefer: handling=lenient``, skipped and written to the manifest's error file as
information): an unknown parameter or type, a ``_typeFilter`` the search engine cannot compile,
a ``_since`` that is not an instant. What the token may not read is decided here too, by
``Access.restrictions`` — the same answers REST search gets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qsl

from facade.access.grant import SERVER_RECORDS, Access
from facade.errors import FacadeError, Forbidden, InvalidRequest, UnsupportedParameter
from facade.search import control
from facade.search.compartment import in_patient_compartment
from facade.search.dates import parse_date_range
from facade.search.params import SearchClause, SearchParamDef
from facade.search.parser import parse_search

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
ASSOCIATED_DATA = ("LatestProvenanceResources", "RelevantProvenanceResources")
PARAMETERS = ("_outputFormat", "_type", "_since", "_until", "_typeFilter", "_elements", "patient", "includeAssociatedData")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$")
MAX_PATIENTS = 1000  # `patient` values per kick-off
MAX_FILTERS = 50  # _typeFilter queries per kick-off

Catalogues = Mapping[str, Mapping[str, SearchParamDef]]


@dataclass(frozen=True)
class ExportRequest:
    level: str  # system | patient | group
    types: tuple[str, ...]  # exported, in this order
    group_id: str | None = None
    since: str | None = None
    until: str | None = None
    type_filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # type → its queries, OR-ed
    elements: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()  # the `patient` parameter: only these compartments
    output_format: str = "application/fhir+ndjson"
    notes: tuple[str, ...] = ()  # what was skipped or cannot be honoured, told in the manifest's error file

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> ExportRequest:
        return cls(
            level=data["level"],
            types=tuple(data["types"]),
            group_id=data.get("group_id"),
            since=data.get("since"),
            until=data.get("until"),
            type_filters={k: tuple(v) for k, v in (data.get("type_filters") or {}).items()},
            elements=tuple(data.get("elements") or ()),
            patients=tuple(data.get("patients") or ()),
            output_format=data.get("output_format") or OUTPUT_FORMATS[0],
            notes=tuple(data.get("notes") or ()),
        )


def parse_kickoff(
    level: str,
    pairs: Iterable[tuple[str, str]],
    catalogues: Catalogues,
    access: Access,
    *,
    lenient: bool,
    group_id: str | None = None,
    post: bool = False,
) -> ExportRequest:
    """``catalogues``: the types this export may cover (the served types but the façade's records)."""
    notes: list[str] = []

    def refuse(error: FacadeError) -> None:
        if not lenient or isinstance(error, Forbidden):
            raise error
        notes.append(error.diagnostics)

    values: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in control.WEB or value == "":
            continue
        if key not in PARAMETERS:
            refuse(UnsupportedParameter(f"$export does not support the parameter '{key}'", expression=key))
            continue
        if "\x00" in value:
            raise InvalidRequest(f"'{key}' contains a NUL character", expression=key)
        # Repeated parameters are one comma-joined list (Bulk Data 2.0), except the queries of
        # _typeFilter and the patients, which may hold commas of their own.
        values.setdefault(key, []).extend([value] if key in ("_typeFilter", "patient") else value.split(","))

    output_format = _one(values, "_outputFormat") or OUTPUT_FORMATS[0]
    if output_format not in OUTPUT_FORMATS:
        raise UnsupportedParameter(
            f"_outputFormat '{output_format}' is not supported; use application/fhir+ndjson", expression="_outputFormat"
        )
    since = _instant(values, "_since")
    until = _instant(values, "_until")

    eligible = [t for t in catalogues if t not in SERVER_RECORDS and (level == "system" or in_patient_compartment(t))]
    asked = [t.strip() for t in values.get("_type", []) if t.strip()]
    for name in asked:
        if name not in eligible:
            where = "is not served here" if name not in catalogues else "cannot be exported at this level"
            refuse(UnsupportedParameter(f"_type '{name}' {where}", expression="_type"))
    associated = values.get("includeAssociatedData", [])
    for value in associated:
        if value not in ASSOCIATED_DATA:
            refuse(UnsupportedParameter(f"includeAssociatedData '{value}' is not supported", expression="includeAssociatedData"))
    types = [t for t in dict.fromkeys(asked) if t in eligible] if asked else sorted(eligible)
    if associated and "Provenance" in eligible and "Provenance" not in types:
        types.append("Provenance")  # the Provenance of the exported compartments

    filters: dict[str, list[str]] = {}
    raw_filters = values.get("_typeFilter", [])
    if len(raw_filters) > MAX_FILTERS:
        raise InvalidRequest(f"At most {MAX_FILTERS} _typeFilter queries per export", expression="_typeFilter")
    for query in raw_filters:
        try:
            resource_type, clauses = compile_type_filter(query, catalogues)
        except InvalidRequest as error:
            refuse(error)
            continue
        if resource_type in types and clauses:
            filters.setdefault(resource_type, []).append(query)

    elements = tuple(dict.fromkeys(e.strip() for e in values.get("_elements", []) if e.strip()))
    for element in elements:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?", element):
            raise InvalidRequest(f"_elements '{element}' is not an element name", expression="_elements")

    patients = tuple(dict.fromkeys(_patient_id(p) for p in values.get("patient", [])))
    if patients and not post:
        raise InvalidRequest("The patient parameter is only accepted in a POST kick-off (a Parameters resource)", expression="patient")
    if patients and level == "system":
        raise InvalidRequest("The patient parameter applies to Patient and Group exports", expression="patient")
    if len(patients) > MAX_PATIENTS:
        raise InvalidRequest(f"At most {MAX_PATIENTS} patients per export", expression="patient")

    # Exactly what the token may read: a type it cannot search is left out when it was not asked
    # for, and refused when it was (403, even under lenient handling).
    allowed = []
    for resource_type in types:
        try:
            access.restrictions(resource_type, "search")
        except Forbidden:
            if resource_type in asked:
                raise
            continue
        allowed.append(resource_type)
    if not allowed:
        raise Forbidden("The access token allows exporting none of the requested resource types", scope="system/*.rs")
    for resource_type in allowed:
        if (since or until) and "_lastUpdated" not in catalogues[resource_type]:
            notes.append(f"{resource_type} has no last-updated time here: exported whole, without _since/_until")
    return ExportRequest(
        level=level,
        types=tuple(allowed),
        group_id=group_id,
        since=since,
        until=until,
        type_filters={t: tuple(q) for t, q in filters.items()},
        elements=elements,
        patients=patients,
        output_format=output_format,
        notes=tuple(notes),
    )


def compile_type_filter(query: str, catalogues: Catalogues) -> tuple[str, tuple[SearchClause, ...]]:
    """``Type?param=value&…`` → its type and clauses, parsed strictly by the REST search parser."""
    resource_type, mark, text = query.partition("?")
    if not mark or resource_type not in catalogues:
        raise UnsupportedParameter(f"_typeFilter '{query}' must be Type?query for a served type", expression="_typeFilter")
    pairs = parse_qsl(text, keep_blank_values=True)
    for key, _value in pairs:
        if key.partition(":")[0] in control.NAMES:
            raise UnsupportedParameter(f"_typeFilter cannot use '{key}' (only search filters)", expression="_typeFilter")
    try:
        parsed = parse_search(resource_type, pairs, catalogues[resource_type], strict=True)
    except FacadeError as error:
        raise UnsupportedParameter(f"_typeFilter '{query}': {error.diagnostics}", expression="_typeFilter") from None
    return resource_type, parsed.clauses


def time_clauses(resource_type: str, request: ExportRequest, catalogue: Mapping[str, SearchParamDef]) -> tuple[SearchClause, ...]:
    """``_since``/``_until`` as ``_lastUpdated`` clauses, for a type that has the legacy timestamp."""
    if "_lastUpdated" not in catalogue:
        return ()
    pairs = [("_lastUpdated", "gt" + request.since)] if request.since else []
    pairs += [("_lastUpdated", "le" + request.until)] if request.until else []
    return parse_search(resource_type, pairs, catalogue, strict=True).clauses if pairs else ()


def _one(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name) or []
    if len(found) > 1:
        raise InvalidRequest(f"{name} takes one value", expression=name)
    return found[0].strip() if found else None


def _instant(values: dict[str, list[str]], name: str) -> str | None:
    value = _one(values, name)
    if value is None:
        return None
    value = value.replace(" ", "+")  # an unencoded '+' of the offset arrives as a space
    try:
        if not _INSTANT.match(value):
            raise InvalidRequest("not an instant")
        parse_date_range(value)  # a real date and time, not only the right shape
    except InvalidRequest:
        raise InvalidRequest(f"{name} must be a FHIR instant such as 2024-01-31T00:00:00Z, not {value[:40]!r}", expression=name) from None
    return value


def _patient_id(reference: str) -> str:
    reference = reference.strip()
    resource_type, _, resource_id = reference.rpartition("/")
    if resource_type not in ("", "Patient") or not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", resource_id):
        raise InvalidRequest(f"patient must be a Patient reference, not {reference[:40]!r}", expression="patient")
    return resource_id
