"""``DocumentReference/$docref`` parameters, turned into an ordinary DocumentReference search.

US Core's operation (http://hl7.org/fhir/us/core/OperationDefinition/docref): ``patient``
(required), ``start`` and ``end`` (care dates: the period the documents cover), ``type``,
``on-demand`` and ``profile``. The façade serves the documents the legacy holds (it generates
none on demand), so ``$docref`` is the search ``patient, type, period ≥ start, period ≤ end``
over current documents, newest first; without dates it is the most recent page of them,
the "current documents" the operation asks for. Everything after that (narrowing by the
grant, paging, audit) is the search path's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from facade.errors import InvalidRequest
from facade.search import control
from facade.search.dates import parse_date_range
from facade.search.params import SearchParamDef

DEFINITION = "http://hl7.org/fhir/us/core/OperationDefinition/docref"
PARAMETERS = {
    "patient": "The patient's id (or Patient/id); required",
    "start": "Documents of care on or after this date/time",
    "end": "Documents of care on or before this date/time",
    "type": "Document type, as a token (system|code)",
    "on-demand": "true asks for generated documents too; this server returns the stored ones",
    "profile": "Accepted and ignored: every document is served in the one profile",
}


def docref_search(pairs: Iterable[tuple[str, str]], catalogue: Mapping[str, SearchParamDef]) -> list[tuple[str, str]]:
    """The search pairs ``$docref`` stands for. Other parameters go to the search as they came,
    which refuses or ignores them (``Prefer: handling``) as it does any unknown one."""
    patient: str | None = None
    search: list[tuple[str, str]] = []
    # Care dates are the period the document covers; a mapping without one searches the document's date.
    when = "period" if "period" in catalogue else "date"
    for key, raw in pairs:
        if key in control.WEB:
            continue
        if "\x00" in raw:
            raise InvalidRequest(f"'{key}' contains a NUL character", expression=key)
        if key == "patient":
            if patient is not None:
                raise InvalidRequest("$docref takes one patient", expression="patient")
            patient = raw.removeprefix("Patient/")
        elif key in ("start", "end"):
            parse_date_range(raw)  # 400 for a value that is not a FHIR date/dateTime
            search.append((when, ("ge" if key == "start" else "le") + raw))
        elif key == "type":
            search.append(("type", raw))
        elif key == "on-demand":
            if raw not in ("true", "false"):
                raise InvalidRequest("on-demand is true or false", expression="on-demand")
        elif key != "profile":
            search.append((key, raw))
    if not patient:
        raise InvalidRequest("$docref needs the patient parameter", expression="patient")
    status = [("status", "current")] if "status" in catalogue else []
    newest = [("_sort", "-date")] if "date" in catalogue and catalogue["date"].sortable else []
    return [("patient", patient), *status, *search, *newest]
