"""SMART scope strings → typed resource scopes.

Spec: SMART App Launch 2.x "Scopes for requesting FHIR Resources"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

    v2:  (patient|user|system)/(<Type>|*).[c][r][u][d][s][?param=value(&param=value)*]
    v1:  (patient|user|system)/(<Type>|*).(read|write|*)   read ⇒ rs, write ⇒ cud, * ⇒ cruds

A resource scope that does not follow the grammar (``.dus``, ``.rx``, an unknown
context) grants nothing: it is reported as malformed, never read loosely.
Other scopes (``openid``, ``launch/patient``, ``offline_access``…) are context
scopes; they grant no resource access by themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTEXTS = ("patient", "user", "system")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/([A-Z][A-Za-z]*|\*)\.([a-z*]+)(?:\?(.*))?$")
_V2_LETTERS = re.compile(r"^c?r?u?d?s?$")
_RESOURCE_LIKE = re.compile(r"^[a-zA-Z]+/[^/]*\.")  # looks like a resource scope, whatever its details


@dataclass(frozen=True)
class ResourceScope:
    context: str  # patient | user | system
    resource_type: str  # a FHIR type or "*"
    interactions: str  # v2 letters in "cruds" order
    query: str | None  # the granular filter, as a query string, or None
    text: str  # as granted

    def covers(self, resource_type: str, letter: str) -> bool:
        return letter in self.interactions and self.resource_type in ("*", resource_type)


@dataclass(frozen=True)
class ScopeSet:
    resource: tuple[ResourceScope, ...]
    context: tuple[str, ...]  # openid, fhirUser, launch/patient, offline_access, ...
    malformed: tuple[str, ...]


def parse_scopes(text: str) -> ScopeSet:
    resource, context, malformed = [], [], []
    for item in dict.fromkeys(text.split()):
        scope = parse_resource_scope(item)
        if scope is not None:
            resource.append(scope)
        elif _RESOURCE_LIKE.match(item):
            malformed.append(item)
        else:
            context.append(item)
    return ScopeSet(tuple(resource), tuple(context), tuple(malformed))


def parse_resource_scope(item: str) -> ResourceScope | None:
    match = _RESOURCE_SCOPE.match(item)
    if match is None:
        return None
    context, resource_type, access, query = match.groups()
    if access in _V1:
        if query is not None:
            return None  # v1 has no granular form
        letters = _V1[access]
    elif _V2_LETTERS.match(access):
        letters = access
    else:
        return None
    if query == "":
        return None
    return ResourceScope(context, resource_type, letters, query, item)
