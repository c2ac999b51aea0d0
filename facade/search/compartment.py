"""The Patient compartment as search clauses.

FHIR defines a patient's compartment by search parameters (CompartmentDefinition
"Patient"): an Observation belongs to a patient when its ``patient`` parameter
points at that patient. Expressing the compartment as an ordinary clause means
it narrows the same SQL every other search parameter narrows, whether the
caller is ``$everything`` or a token limited to one patient.
"""

from __future__ import annotations

from facade.search.params import ReferenceValue, SearchClause, TokenValue

# Resource type → the search parameter that names its patient ("_id" for the Patient itself).
# A served type absent here has no patient compartment (e.g. Practitioner, Medication).
PATIENT_COMPARTMENT_PARAM: dict[str, str] = {
    "Patient": "_id",
    "AllergyIntolerance": "patient",
    "CarePlan": "patient",
    "CareTeam": "patient",
    "Condition": "patient",
    "Coverage": "patient",
    # A patient's implants are their record too: narrowed like the compartment's members.
    "Device": "patient",
    "DiagnosticReport": "patient",
    "DocumentReference": "patient",
    "Encounter": "patient",
    "Goal": "patient",
    "Immunization": "patient",
    "MedicationDispense": "patient",
    "MedicationRequest": "patient",
    "Observation": "patient",
    "Procedure": "patient",
    "Provenance": "patient",
    "RelatedPerson": "patient",
    "ServiceRequest": "patient",
    "Specimen": "patient",
}


def in_patient_compartment(resource_type: str) -> bool:
    return resource_type in PATIENT_COMPARTMENT_PARAM


def patient_compartment_clause(resource_type: str, patient_id: str) -> SearchClause:
    """The clause that keeps only ``resource_type`` resources in ``patient_id``'s compartment."""
    name = PATIENT_COMPARTMENT_PARAM[resource_type]
    if name == "_id":
        return SearchClause(name, "token", None, (TokenValue(None, patient_id),), raw=patient_id)
    return SearchClause(name, "reference", None, (ReferenceValue("Patient", patient_id),), raw=f"Patient/{patient_id}")
