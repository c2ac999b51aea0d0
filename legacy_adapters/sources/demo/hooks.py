"""Python hooks for the demo mapping: transforms a mapping file cannot say.

A hook receives the listed column values (already trimmed; None when absent)
and returns plain JSON data, or None to leave the element out.
"""

from __future__ import annotations

from datetime import datetime

from legacy_adapters.mapping.values import split_collection
from legacy_adapters.sources.documents import udi_carrier, udi_date, udi_field  # noqa: F401  (hooks of this mapping)
from legacy_adapters.sources.hooklib import result_quantity, result_text

# The later tables' hooks (notes, plans, care teams, names) live in their own module.
from .record_hooks import (  # noqa: F401
    comma_name,
    note_data,
    plan_description,
    plan_narrative,
    profile_if,
    team_member,
    unknown_unless_code,
)

UCUM = "http://unitsofmeasure.org"


def lab_quantity(result: str | None, units: str | None) -> dict | None:
    """'5.4' or '<5' with a legacy unit → valueQuantity (the mapping's `units:` table adds the UCUM
    system and code); non-numeric results → None."""
    return result_quantity(result, units)


def lab_text(result: str | None) -> str | None:
    """Qualitative results ('POS', 'NEG', free text) → valueString; numeric ones → None."""
    return result_text(result)


def bmi(weight_lb: object, height_in: object) -> dict | None:
    """Body mass index from the wide vitals row's pounds and inches."""
    try:
        weight, height = float(weight_lb), float(height_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if weight <= 0 or height <= 0:
        return None
    value = round(703.0 * weight / (height * height), 1)
    return {"value": value, "unit": "kg/m2", "system": UCUM, "code": "kg/m2"}


def not_merged(merged_to: object) -> bool:
    """A patient record merged into another is no longer active."""
    return merged_to is None


DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def references(ids: str | None, resource_type: str) -> list[dict] | None:
    """A collection column of ids (e.g. a lab order's result guids) → sorted references."""
    return [{"reference": f"{resource_type}/{item}"} for item in split_collection(ids)] or None


def absent_unless_date(text: str | None, date_format: str) -> dict | None:
    """The DataAbsentReason extension for a required date the legacy row lacks (empty or junk),
    for the element's ``_x`` sibling; None when the date is there."""
    if text:
        try:
            datetime.strptime(text, date_format)
            return None
        except ValueError:
            pass
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}


def encounter_status(admitted: str | None, discharged: str | None) -> str:
    """Discharged visits are finished, open ones in progress; without even an admission time, unknown."""
    if _stamp(discharged, "%Y-%m-%d %H:%M:%S"):
        return "finished"
    return "in-progress" if _stamp(admitted, "%Y-%m-%d %H:%M:%S") else "unknown"


def _stamp(text: str | None, date_format: str) -> bool:
    return bool(text) and absent_unless_date(text, date_format) is None


REACTION_SEVERITY = {"MI": "mild", "MO": "moderate", "SV": "severe"}


def allergy_reaction(text: str | None, severity: str | None) -> dict | None:
    """A reaction needs a manifestation: a severity alone (no reaction text) is left out."""
    if not text:
        return None
    reaction: dict = {"manifestation": [{"text": text.capitalize()}]}
    if severity in REACTION_SEVERITY:
        reaction["severity"] = REACTION_SEVERITY[severity]
    return reaction


def unknown_unless_date(text: str | None, date_format: str) -> str | None:
    """'unknown' where a required date may be given as text (Immunization.occurrenceString)."""
    return None if absent_unless_date(text, date_format) is None else "unknown"


HUNGER_ANSWERS = ("O", "S", "N", "R")


def hunger_members(form_id: str | None, *answers: str | None) -> list[dict] | None:
    """hasMember of the Hunger Vital Sign panel: the question Observations this form row makes,
    by the same rule as the mapping's variants (an answer from the form's list)."""
    if form_id is None:
        return None
    names = [f"q{i}" for i, answer in enumerate(answers, 1) if answer in HUNGER_ANSWERS]
    return [{"reference": f"Observation/{form_id}-{name}"} for name in names] or None
