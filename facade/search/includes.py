"""``_include`` and ``_revinclude`` values (R4 search §3.1.1.5.4), checked against the served types.

``_include=Observation:patient[:Patient]`` asks for the resources a page's matches point at
through a reference parameter of the searched type; ``_revinclude=Observation:patient``
for the resources of another type that point at the page's matches. Only reference
parameters a mapping declares can be followed, so what is advertised is what works.
"""

from __future__ import annotations

from collections.abc import Mapping

from facade.errors import InvalidRequest
from facade.search.params import Include, SearchParamDef

Catalogues = Mapping[str, Mapping[str, SearchParamDef]]

# A reference parameter declared with one of these targets may point at any type (Provenance.target).
ANY_TARGET = frozenset({"Resource", "Any"})


def parse_include(resource_type: str, key: str, raw: str, catalogues: Catalogues) -> Include | None:
    """The include a parameter asks for, or None when it names nothing this server can follow."""
    name, _, modifier = key.partition(":")
    reverse = name == "_revinclude"
    if raw.strip() == "*" or raw.endswith(":*"):
        raise InvalidRequest(f"{name}=* is not supported; name each reference parameter (Type:param)", expression=name)
    if modifier:  # :iterate / :recurse would follow includes of includes, unbounded
        return None
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise InvalidRequest(f"{name} must be Type:parameter or Type:parameter:TargetType, got '{raw}'", expression=name)
    source, param = parts[0], parts[1]
    definition = catalogues.get(source, {}).get(param)
    if definition is None or definition.type != "reference":
        return None
    if reverse:
        target = resource_type
        if len(parts) == 3 and parts[2] != resource_type:
            return None
        if not definition.refers_to(resource_type):
            return None
    else:
        if source != resource_type:
            return None
        target = parts[2] if len(parts) == 3 else (definition.target or "")
        if target not in catalogues or not definition.refers_to(target):
            return None
    return Include(source, param, target, reverse)
