"""SMART scope strings → typed resource scopes: the one grammar of the authorization server
(what a client may ask for, what the consent page shows) and the resource server (what a
token grants).

Spec: SMART App Launch 2.x "Scopes for requesting FHIR Resources"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

    v2:  (patient|user|system)/(<Type>|*).[c][r][u][d][s][?param=value(&param=value)*]
    v1:  (patient|user|system)/(<Type>|*).(read|write|*)[?…]   read ⇒ rs, write ⇒ cud, * ⇒ cruds

A v1 scope with a filter (``patient/Observation.read?category=…``) is read as its v2
equivalent: the consent page offers such narrowings, so a scope it grants means the same
here. A resource scope that does not follow the grammar (``.dus``, ``.rx``, an empty
filter, an unknown context) grants nothing: it is reported as malformed, never read
loosely. Other scopes (``openid``, ``launch/patient``, ``offline_access``…) are context
scopes; they grant no resource access by themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_RESOURCE_SCOPE = re.compile(r"^(patient|user|system)/([A-Z][A-Za-z]*|\*)\.([a-z*]+)(?:\?(\S*))?$")
_V2_LETTERS = re.compile(r"^c?r?u?d?s?$")
_RESOURCE_LIKE = re.compile(r"^[a-zA-Z]+/[^/]*\.")  # looks like a resource scope, whatever its details


@dataclass(frozen=True)
class ResourceScope:
    context: str  # patient | user | system
    resource_type: str  # a FHIR type or "*"
    interactions: str  # v2 letters in "cruds" order
    query: str | None  # the granular filter, as a query string without "?", or None
    text: str  # as granted (v1 stays v1)

    def covers(self, resource_type: str, letter: str) -> bool:
        """Whether this scope allows interaction ``letter`` (c r u d s) on ``resource_type``."""
        return letter in self.interactions and self.resource_type in ("*", resource_type)

    def includes(self, other: ResourceScope) -> bool:
        """Whether everything ``other`` grants, this grants too (a pre-authorized scope that
        covers a requested one, for Backend Services)."""
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and set(other.interactions) <= set(self.interactions)
            and self.query in (None, other.query)
        )


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
        letters = _V1[access]
    elif access and _V2_LETTERS.match(access):
        letters = access
    else:
        return None
    if query == "":
        return None  # "?" with nothing after it
    return ResourceScope(context, resource_type, letters, query, item)


def is_resource_scope(item: str) -> bool:
    return parse_resource_scope(item) is not None
