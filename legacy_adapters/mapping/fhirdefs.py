"""What FHIR R4 says about elements: for checking resource templates when a mapping loads,
for ``_summary``/``_elements``, and for the sandbox's policies.

Per type: each element's FHIR type, whether it repeats, whether it is required, its choice
group (``effective[x]``), the codes a required binding allows, the resource types a Reference
may point at, and whether it is a summary element. Derived from the ``fhir.resources.R4B``
models (R4B changed no element a façade serves) into ``fhir-r4-elements.json`` beside this
module, which the server reads: the models and pydantic would cost each worker ~30 MiB for a
table of 0.5 MB. ``python -m legacy_adapters.mapping.fhirdefs`` writes the table anew after an
upgrade of fhir.resources; a test holds it equal to the models. Resource type names are R4's
own list.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RESOURCE_TYPES = frozenset(
    """
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse AuditEvent
    Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement CarePlan CareTeam
    CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression CodeSystem
    Communication CommunicationRequest CompartmentDefinition Composition ConceptMap Condition Consent Contract
    Coverage CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue Device DeviceDefinition
    DeviceMetric DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference
    EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare
    EventDefinition Evidence EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag
    Goal GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization
    ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice Library
    Linkage List Location Measure MeasureReport Media Medication MedicationAdministration MedicationDispense
    MedicationKnowledge MedicationRequest MedicationStatement MedicinalProduct MedicinalProductAuthorization
    MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient
    MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged
    MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition MessageHeader
    MolecularSequence NamingSystem NutritionOrder Observation ObservationDefinition OperationDefinition
    OperationOutcome Organization OrganizationAffiliation Parameters Patient PaymentNotice
    PaymentReconciliation Person PlanDefinition Practitioner PractitionerRole Procedure Provenance
    Questionnaire QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition
    ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment RiskEvidenceSynthesis Schedule
    SearchParameter ServiceRequest Slot Specimen SpecimenDefinition StructureDefinition StructureMap
    Subscription Substance SubstanceNucleicAcid SubstancePolymer SubstanceProtein
    SubstanceReferenceInformation SubstanceSourceMaterial SubstanceSpecification SupplyDelivery SupplyRequest
    Task TerminologyCapabilities TestReport TestScript ValueSet VerificationResult VisionPrescription
    """.split()  # noqa: SIM905 - a word list reads better than 145 quoted names
)

# FHIR primitive types by how their JSON values look.
TEXT_TYPES = frozenset(["string", "code", "id", "markdown", "uri", "url", "canonical", "oid", "uuid", "base64Binary", "xhtml"])
INTEGER_TYPES = frozenset(["integer", "positiveInt", "unsignedInt"])
DATE_TYPES = frozenset(["date", "dateTime", "instant", "time"])
PRIMITIVES = TEXT_TYPES | INTEGER_TYPES | DATE_TYPES | {"boolean", "decimal"}


@dataclass(frozen=True)
class Element:
    name: str
    type: str  # a primitive ('code', 'dateTime'…) or a complex type / backbone element ('CodeableConcept', 'ObservationComponent')
    is_list: bool
    required: bool
    choice: str | None = None  # 'effective' for effectiveDateTime…
    choice_required: bool = False
    codes: tuple[str, ...] | None = None  # a required binding's codes (None when open or unknown)
    targets: tuple[str, ...] | None = None  # Reference: the resource types it may point at
    summary: bool = False  # part of the summary view (``_summary=true``)

    @property
    def primitive(self) -> bool:
        return self.type in PRIMITIVES

    @property
    def label(self) -> str:
        return f"a list of {self.type}" if self.is_list else _article(self.type)


def _article(type_name: str) -> str:
    return f"{'an' if type_name[0].lower() in 'aeiou' else 'a'} {type_name}"


TABLE = Path(__file__).with_name("fhir-r4-elements.json")
_FIELDS = ("type", "is_list", "required", "choice", "choice_required", "codes", "targets", "summary")


@cache
def _table() -> dict[str, dict[str, list]]:
    return json.loads(TABLE.read_text(encoding="utf-8"))


@cache
def elements(type_name: str) -> dict[str, Element] | None:
    """The elements of a FHIR type by name, or None when the type is unknown."""
    rows = _table().get(type_name)
    if rows is None:
        return None
    found = {}
    for name, row in rows.items():
        values = dict(zip(_FIELDS, row, strict=True))
        for key in ("codes", "targets"):
            values[key] = tuple(values[key]) if values[key] is not None else None
        found[name] = Element(name=name, **values)
    return found


def derive_table() -> dict[str, dict[str, list]]:
    """The table from the fhir.resources models: every R4 resource type and every type its
    elements reach, elements in the models' order."""
    table: dict[str, dict[str, list]] = {}
    pending = sorted(RESOURCE_TYPES)
    while pending:
        type_name = pending.pop()
        if type_name in table:
            continue
        found = _model_elements(type_name)
        if found is None:
            continue
        table[type_name] = {name: [getattr(e, f) for f in _FIELDS] for name, e in found.items()}
        pending.extend(e.type for e in found.values() if not e.primitive and e.type not in table)
    return dict(sorted(table.items()))


def _model_elements(type_name: str) -> dict[str, Element] | None:
    try:
        from fhir.resources.R4B import get_fhir_model_class

        model = get_fhir_model_class(type_name)
    except (ValueError, ImportError):
        return None
    found = {}
    for name, field in model.model_fields.items():
        extra: dict[str, Any] = dict(field.json_schema_extra) if isinstance(field.json_schema_extra, dict) else {}
        if name.endswith("__ext") or name == "fhir_comments" or not extra.get("element_property"):
            continue
        is_list, type_ = _type_of(field.annotation)
        enum = extra.get("enum_values")
        found[field.alias or name] = Element(
            name=field.alias or name,
            type=type_,
            is_list=is_list,
            required=bool(field.is_required() or extra.get("element_required")),
            choice=extra.get("one_of_many"),
            choice_required=bool(extra.get("one_of_many_required")),
            codes=tuple(enum) if enum and "+" not in enum else None,
            targets=tuple(extra["enum_reference_types"]) if extra.get("enum_reference_types") else None,
            summary=bool(extra.get("summary_element_property")),
        )
    return found


def _type_of(annotation: Any) -> tuple[bool, str]:
    """(repeats, FHIR type name) of a model field's annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if _is_union(annotation) else [annotation]
    inner = args[0] if args else annotation
    is_list = typing.get_origin(inner) in (list, typing.List)  # noqa: UP006 - the models spell it typing.List
    if is_list:
        inner = typing.get_args(inner)[0]
        if _is_union(inner):
            inner = next(a for a in typing.get_args(inner) if a is not type(None))
    if typing.get_origin(inner) is typing.Annotated:
        base, *meta = typing.get_args(inner)
        name = type(meta[0]).__name__ if meta else getattr(base, "__name__", "string")
        return is_list, name[0].lower() + name[1:]
    if inner is bool:
        return is_list, "boolean"
    name = getattr(inner, "__name__", "Element")
    return is_list, name[:-4] if name.endswith("Type") else name


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None))


def choice_groups(found: dict[str, Element]) -> dict[str, list[Element]]:
    groups: dict[str, list[Element]] = {}
    for element in found.values():
        if element.choice:
            groups.setdefault(element.choice, []).append(element)
    return groups


def write_table() -> None:
    TABLE.write_text(json.dumps(derive_table(), separators=(",", ":")) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_table()
    print(f"wrote {TABLE}")
