"""Hand checks of what a resource must carry before it may claim a US Core 6.1 profile.

The official snapshots (support/profiles.py, tests/uscore/) hold every claim to its profile's
cardinalities, fixed and pattern values, slices and required bindings. These checks add the
FHIRPath invariants a missing legacy value could break (con-3, us-core-7, provenance-1…), and
run where the package is not at hand. ``profile_problems(resource)`` returns what is wrong, an
empty list when the claim holds; a claim of a profile outside US Core fails.
"""

from __future__ import annotations

from collections.abc import Callable

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def codes(concepts, system: str | None = None) -> set[str]:
    """Codes of a CodeableConcept or a list of them (optionally of one system)."""
    if isinstance(concepts, dict):
        concepts = [concepts]
    return {c.get("code") for cc in concepts or [] for c in cc.get("coding", []) if system is None or c.get("system") == system}


def data_absent(resource: dict, element: str) -> bool:
    """``_element`` carries the DataAbsentReason extension."""
    return any(e.get("url") == DATA_ABSENT_REASON for e in resource.get(f"_{element}", {}).get("extension", []))


def _value_or_absent(resource: dict, element: str) -> bool:
    return element in resource or data_absent(resource, element)


def _encounter(r: dict) -> list[str]:
    return [
        m
        for m, ok in [("status", "status" in r), ("class", "class" in r), ("type", bool(r.get("type"))), ("subject", "subject" in r)]
        if not ok
    ]


def _problem(r: dict) -> list[str]:
    out = []
    if "problem-list-item" not in codes(r.get("category")):
        out.append("category problem-list-item")
    if "entered-in-error" not in codes(r.get("verificationStatus")) and "clinicalStatus" not in r:
        out.append("clinicalStatus (us-core con-3)")
    if r.get("abatementDateTime") and not codes(r.get("clinicalStatus")) <= {"inactive", "resolved", "remission"}:
        out.append("abated but clinically active (con-4)")
    return out + [m for m in ("code", "subject") if m not in r]


def _encounter_diagnosis(r: dict) -> list[str]:
    out = [] if "encounter-diagnosis" in codes(r.get("category")) else ["category encounter-diagnosis"]
    return out + [m for m in ("code", "subject") if m not in r]


def _medication_request(r: dict) -> list[str]:
    out = [m for m in ("status", "intent", "subject", "requester") if m not in r]
    if sum(k in r for k in ("medicationReference", "medicationCodeableConcept")) != 1:
        out.append("exactly one medication[x]")
    return out


def _immunization(r: dict) -> list[str]:
    out = [m for m in ("status", "vaccineCode", "patient", "primarySource") if m not in r]
    if "occurrenceDateTime" not in r and "occurrenceString" not in r:
        out.append("occurrence[x]")
    return out


def _procedure(r: dict) -> list[str]:
    out = [m for m in ("status", "code", "subject") if m not in r]
    if r.get("status") in ("completed", "in-progress") and not _value_or_absent(r, "performedDateTime"):
        out.append("performed[x] (us-core-7)")
    return out


def _lab_report(r: dict) -> list[str]:
    out = [m for m in ("status", "code", "subject") if m not in r]
    if "LAB" not in codes(r.get("category"), "http://terminology.hl7.org/CodeSystem/v2-0074"):
        out.append("category LAB")
    if not _value_or_absent(r, "effectiveDateTime"):
        out.append("effective[x]")
    return out


def _smoking(r: dict) -> list[str]:
    out = [m for m in ("status", "subject", "valueCodeableConcept") if m not in r]
    if codes(r.get("code"), "http://loinc.org") != {"72166-2"}:
        out.append("code 72166-2")
    if "social-history" not in codes(r.get("category")):
        out.append("category social-history")
    if not _value_or_absent(r, "effectiveDateTime"):
        out.append("effectiveDateTime")
    return out


def _social(code: str, category: str, dated: bool) -> Callable[[dict], list[str]]:
    """Occupation and pregnancy status/intent: the code, the category, a coded or text answer, and
    (pregnancy) the effectiveDateTime the profiles require."""

    def check(r: dict) -> list[str]:
        out = [m for m in ("status", "subject", "valueCodeableConcept") if m not in r]
        if codes(r.get("code"), "http://loinc.org") != {code}:
            out.append(f"code {code}")
        if category not in codes(r.get("category")):
            out.append(f"category {category}")
        if dated and not _value_or_absent(r, "effectiveDateTime"):
            out.append("effectiveDateTime")
        return out

    return check


def _screening(r: dict) -> list[str]:
    out = [m for m in ("status", "subject", "code") if m not in r]
    if "survey" not in codes(r.get("category")):
        out.append("category survey")
    if not (r.get("component") or r.get("hasMember")) and not any(k.startswith("value") for k in r) and "dataAbsentReason" not in r:
        out.append("a value, members or a dataAbsentReason (us-core-2)")
    return out


def _provenance(r: dict) -> list[str]:
    out = [m for m in ("target", "recorded", "agent") if not r.get(m)]
    for agent in r.get("agent", []):
        who = agent.get("who", {})
        if not who:
            out.append("agent.who")
        if who.get("reference", "").startswith(("Practitioner/", "Device/")) and "onBehalfOf" not in agent:
            out.append("agent.onBehalfOf (provenance-1)")
    if not any("author" in codes(a.get("type")) for a in r.get("agent", [])):
        out.append("an author agent")
    return out


def _practitioner(r: dict) -> list[str]:
    out = [] if r.get("identifier") else ["identifier"]
    return out + ([] if any(n.get("family") for n in r.get("name", [])) else ["name.family"])


CHECKS: dict[str, Callable[[dict], list[str]]] = {
    "us-core-encounter": _encounter,
    "us-core-condition-problems-health-concerns": _problem,
    "us-core-condition-encounter-diagnosis": _encounter_diagnosis,
    "us-core-medicationrequest": _medication_request,
    "us-core-medication": lambda r: [] if r.get("code") else ["code"],
    "us-core-allergyintolerance": lambda r: [m for m in ("code", "patient", "clinicalStatus") if m not in r],
    "us-core-immunization": _immunization,
    "us-core-procedure": _procedure,
    "us-core-diagnosticreport-lab": _lab_report,
    "us-core-smokingstatus": _smoking,
    "us-core-observation-occupation": _social("11341-5", "social-history", dated=False),
    "us-core-observation-pregnancystatus": _social("82810-3", "social-history", dated=True),
    "us-core-observation-pregnancyintent": _social("86645-9", "social-history", dated=True),
    "us-core-observation-screening-assessment": _screening,
    "us-core-provenance": _provenance,
    "us-core-practitioner": _practitioner,
    "us-core-organization": lambda r: [] if r.get("name") else ["name"],
    "us-core-location": lambda r: [] if r.get("name") else ["name"],
}


def profile_problems(resource: dict) -> list[str]:
    problems = []
    for url in resource.get("meta", {}).get("profile", []):
        name = url.removeprefix(US_CORE)
        if not url.startswith(US_CORE):
            problems.append(f"claims {url}, which is not a US Core profile")
        elif name in CHECKS:
            problems.extend(f"{name}: {p}" for p in CHECKS[name](resource))
    return problems
