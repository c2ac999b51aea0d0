"""``Patient/{id}/$everything`` parameters, parsed into a frozen request.

https://hl7.org/fhir/R4/patient-operation-everything.html — ``_count``, ``_since``,
``_type`` and the paging ``_cursor``. The executor is facade/core/everything.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from facade.errors import InvalidRequest, UnsupportedParameter
from facade.search import control
from facade.search.compartment import PATIENT_COMPARTMENT_PARAM
from facade.search.cursor import decode_cursor
from facade.search.dates import parse_date_range
from facade.search.includes import Catalogues


@dataclass(frozen=True)
class EverythingRequest:
    patient_id: str
    types: tuple[str, ...]  # in paging order, the Patient first
    count: int
    since: str | None = None
    position: tuple[int, tuple | None] = (0, None)  # type index, that type's keyset cursor
    ignored: tuple[str, ...] = ()
    cursor_token: str | None = None  # _cursor as received: the self link repeats it

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
    types = [t for t, catalogue in catalogues.items() if t != "Patient" and PATIENT_COMPARTMENT_PARAM.get(t) in catalogue]
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
        if raw == "" or key in control.WEB:
            continue
        if "\x00" in raw:
            raise InvalidRequest(f"'{key}' contains a NUL character", expression=key)
        if key == "_count":
            count = control.parse_count(raw, max_count, minimum=1)
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
    fingerprint, position, before = decode_cursor(cursor)
    if before or fingerprint != request.fingerprint() or not position or type(position[0]) is not int or not 0 <= position[0] < len(types):
        raise InvalidRequest("_cursor belongs to a different request; follow the Bundle's links", expression="_cursor")
    return EverythingRequest(patient_id, request.types, count, since, (position[0], tuple(position[1:]) or None), request.ignored, cursor)
