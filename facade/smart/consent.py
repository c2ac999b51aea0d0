"""What the authorization server does with SMART scopes: which it accepts, how the consent page
says them in plain words, the category narrowings a user may pick instead of a whole
resource type, and "does this pre-authorized scope cover that requested one" for backend
clients. The grammar is the resource server's own (facade/access/scopes.py), so a scope
granted here means exactly the same where it is enforced.
"""

from __future__ import annotations

from facade.access.scopes import parse_resource_scope

CONTEXT_SCOPES = {
    "openid": "Confirm who you are to the app",
    "fhirUser": "Tell the app which FHIR record describes you",
    "profile": "Tell the app your name",
    "launch": "Let the app know the patient (and encounter) open in your record system",
    "launch/patient": "Let the app know which patient you choose",
    "launch/encounter": "Let the app know which encounter is in context",
    "offline_access": "Keep access while you are away, until you revoke it (about 90 days, renewed on use)",
    "online_access": "Keep access for the rest of the working day",
}
_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_WHO = {"patient": "for the patient in context", "user": "that you may see", "system": "for every patient"}

# The granular categories US Core asks servers to offer (HTI-1 / US Core 6.1 "granular scopes").
CATEGORIES = {
    "Condition": [
        ("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "encounter diagnoses"),
        ("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "problem list"),
        ("http://hl7.org/fhir/us/core/CodeSystem/condition-category", "health-concern", "health concerns"),
    ],
    "Observation": [
        ("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory", "laboratory results"),
        ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "vital signs"),
        ("http://terminology.hl7.org/CodeSystem/observation-category", "social-history", "social history"),
        ("http://terminology.hl7.org/CodeSystem/observation-category", "survey", "survey answers"),
        ("http://terminology.hl7.org/CodeSystem/observation-category", "exam", "exam findings"),
        ("http://terminology.hl7.org/CodeSystem/observation-category", "imaging", "imaging results"),
        ("http://terminology.hl7.org/CodeSystem/observation-category", "procedure", "procedure results"),
        ("http://hl7.org/fhir/us/core/CodeSystem/us-core-category", "sdoh", "social needs (SDOH)"),
    ],
}


def is_valid(text: str) -> bool:
    return text in CONTEXT_SCOPES or parse_resource_scope(text) is not None


def split_scopes(scope: str | None) -> list[str]:
    seen: list[str] = []
    for item in (scope or "").split():
        if item not in seen:
            seen.append(item)
    return seen


def describe(text: str) -> str:
    if text in CONTEXT_SCOPES:
        return CONTEXT_SCOPES[text]
    parsed = parse_resource_scope(text)
    if parsed is None:
        return text
    verbs = " and ".join(_VERBS[letter] for letter in parsed.interactions)
    what = "all kinds of records" if parsed.resource_type == "*" else f"{parsed.resource_type} records"
    sentence = f"{verbs.capitalize()} {what} {_WHO[parsed.context]}"
    if parsed.query:
        sentence += f", only where {parsed.query.replace('&', ' and ')}"
    return sentence


def narrowings(text: str) -> list[tuple[str, str]]:
    """(scope, label) pairs a user may grant instead of a whole-type scope: one per category."""
    parsed = parse_resource_scope(text)
    if parsed is None or parsed.query or parsed.context == "system":
        return []
    permissions = parsed.interactions if set(parsed.interactions) <= set("rs") else "rs"
    return [
        (f"{parsed.context}/{parsed.resource_type}.{permissions}?category={system}|{code}", label)
        for system, code, label in CATEGORIES.get(parsed.resource_type, [])
    ]


def allowed_choices(requested: list[str]) -> set[str]:
    """Every scope the consent page may grant for this request: the requested ones and their narrowings."""
    choices = set(requested)
    for text in requested:
        choices.update(scope for scope, _ in narrowings(text))
    return choices


def covered(requested: list[str], preauthorized: list[str]) -> list[str]:
    """The requested scopes a client's pre-authorized set covers (Backend Services scope mediation)."""
    allowed = [parsed for parsed in map(parse_resource_scope, preauthorized) if parsed]
    result = []
    for text in requested:
        parsed = parse_resource_scope(text)
        if text in preauthorized or (parsed and any(scope.includes(parsed) for scope in allowed)):
            result.append(text)
    return result


def has_patient_scopes(scopes: list[str]) -> bool:
    return any(text.startswith("patient/") for text in scopes)
