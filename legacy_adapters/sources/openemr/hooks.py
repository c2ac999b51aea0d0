"""Python hooks for the OpenEMR mapping: the transforms a mapping file cannot say.

Hooks get the listed column values (strings trimmed; None when absent) and return
plain JSON data, or None to leave the element out.
"""

from __future__ import annotations

from datetime import date

from legacy_adapters.sources.documents import base64_text, udi_carrier, udi_date, udi_field  # noqa: F401  (hooks of this mapping)
from legacy_adapters.sources.hooklib import profile_if, profile_if_any, result_quantity, result_text  # noqa: F401  (profile_if*: hooks of this mapping)

UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

# Lab unit strings as OpenEMR stores them → UCUM (OpenEMR itself rewrites in/lb the same way).
LAB_UNITS = {
    "in": "[in_i]",
    "lb": "[lb_av]",
    "mg/dl": "mg/dL",
    "mg/dL": "mg/dL",
    "g/dL": "g/dL",
    "mmol/L": "mmol/L",
    "%": "%",
    "U/L": "U/L",
    "mEq/L": "meq/L",
    "10*3/uL": "10*3/uL",
    "K/uL": "10*3/uL",
}


def lab_quantity(result: str | None, units: str | None) -> dict | None:
    """A numeric ``procedure_result.result`` (optionally '<5') → valueQuantity, with UCUM where the
    unit is known; anything else → None."""
    quantity = result_quantity(result, units)
    if quantity is not None and units in LAB_UNITS:
        quantity["system"] = UCUM
        quantity["code"] = LAB_UNITS[units]
    return quantity


def lab_text(result: str | None) -> str | None:
    """A non-numeric result ('Positive', free text) → valueString."""
    return result_text(result)


def vaccine_code(cvx: str | None) -> dict:
    """``immunizations.cvx_code`` → vaccineCode; a row without one says so (vaccineCode is required)."""
    if cvx:
        return {"coding": [{"system": CVX, "code": cvx}]}
    return {"coding": [{"system": DATA_ABSENT, "code": "unknown", "display": "Unknown"}], "text": "Unknown vaccine"}


def unknown_unless_date(value: object) -> str | None:
    """occurrenceString 'unknown' when a required date is NULL or a zero date ('0000-00-00')."""
    return None if isinstance(value, date) else "unknown"


def absent_unless_date(value: object) -> dict | None:
    """The DataAbsentReason extension (for an element's ``_x`` sibling) when a date the profiles
    require is NULL or a zero date; None when the date is there."""
    if isinstance(value, date):
        return None
    return {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}


# The vital-sign variants of the mapping, in the order of vitals_members' columns.
VITAL_VARIANTS = (
    "pulse",
    "respiration",
    "temperature",
    "weight",
    "height",
    "head-circumference",
    "bmi",
    "oxygen-saturation",
    "oxygen-flow-rate",
    "inhaled-oxygen",
    "pediatric-bmi",
    "pediatric-head-circumference",
    "pediatric-weight-for-length",
)


def vitals_members(row_id: str | None, *values: object) -> list[dict] | None:
    """hasMember of the vital-signs panel: the Observations this form_vitals row makes, by the
    same rule as the mapping's variants (a value above zero; both blood pressures present)."""
    if row_id is None:
        return None
    *measures, systolic, diastolic = values
    members = [name for name, value in zip(VITAL_VARIANTS, measures) if _positive(value)]
    if systolic is not None and diastolic is not None:
        members.append("blood-pressure")
    return [{"reference": f"Observation/{row_id}-{name}"} for name in members] or None


def _positive(value: object) -> bool:
    try:
        return float(value) > 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def note_data(text: str | None) -> str | None:
    """A clinical note's text (form_clinical_notes.description) → Attachment.data."""
    return base64_text(text)


def unknown_unless_code(code: str | None) -> str | None:
    """'UNK' (v3 NullFlavor) for a note OpenEMR stored without a type code."""
    return None if code else "UNK"


def diagnosis_item(diagnoses: str | None, index: int, rest: bool = False) -> str | None:
    """One item of an order line's diagnoses ("ICD10:E11.9;ICD10:I10"), for one reasonCode each;
    ``rest``: that item and all after it."""
    items = [item.strip() for item in (diagnoses or "").split(";") if item.strip()]
    chosen = items[index:] if rest else items[index : index + 1]
    return ";".join(chosen) or None


PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
US_CORE_PARTICIPANT = "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type"


def provenance_agents(organization: str | None, user: str | None = None) -> list[dict] | None:
    """US Core Provenance agents of a row: the author is the practitioner who recorded it (a user
    with an NPI), acting for the practice, else the practice itself; the practice transmits it.
    ``organization`` and ``user`` are uuids (the primary business entity's, the user's)."""
    if organization is None:
        return None
    practice = {"reference": f"Organization/{organization}"}
    author: dict = {"type": {"coding": [{"system": PARTICIPANT, "code": "author", "display": "Author"}]}}
    if user is not None:
        # US Core provenance-1: a practitioner author says whom it acted for
        author |= {"who": {"reference": f"Practitioner/{user}"}, "onBehalfOf": practice}
    else:
        author["who"] = practice
    transmitter = {"type": {"coding": [{"system": US_CORE_PARTICIPANT, "code": "transmitter", "display": "Transmitter"}]}, "who": practice}
    return [author, transmitter]
