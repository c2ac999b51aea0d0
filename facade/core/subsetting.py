"""``_summary`` and ``_elements``: returning part of each resource (R4 search §3.1.1.5.8–9).

Which elements are "summary" and which are mandatory is read once per type from the
FHIR R4 element table (legacy_adapters/mapping/fhirdefs.py), when the service starts — never
while answering a request. Trimming a resource is then a dict comprehension over its
top-level keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from legacy_adapters.mapping.fhirdefs import elements

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
ALWAYS = frozenset({"resourceType", "id", "meta"})


@dataclass(frozen=True)
class ElementSets:
    """A type's top-level JSON keys, grouped as the specification groups them."""

    summary: frozenset[str]  # isSummary elements (including each primitive's ``_x`` sibling)
    mandatory: frozenset[str]  # min ≥ 1 (a required choice counts each of its forms)
    choices: dict[str, frozenset[str]]  # value → {valueQuantity, valueString, ...}


@cache
def element_sets(resource_type: str) -> ElementSets:
    """Cached, so call it at start-up."""
    summary, mandatory = set(), set()
    choices: dict[str, set[str]] = {}
    for key, element in (elements(resource_type) or {}).items():
        keys = {key, f"_{key}"}  # a primitive's extension sibling travels with it
        if element.choice:
            choices.setdefault(element.choice, set()).update(keys)
        if element.summary:
            summary |= keys
        if element.required or element.choice_required:
            mandatory |= keys
    return ElementSets(frozenset(summary), frozenset(mandatory), {k: frozenset(v) for k, v in choices.items()})


def keep_for_summary(resource_type: str, mode: str) -> frozenset[str] | None:
    """The top-level keys ``_summary=mode`` keeps; None for "everything but text" (``data``)."""
    sets = element_sets(resource_type)
    if mode == "true":
        return ALWAYS | sets.summary | sets.mandatory
    if mode == "text":
        return ALWAYS | {"text", "_text"} | sets.mandatory
    return None


def keep_for_elements(resource_type: str, names: tuple[str, ...]) -> frozenset[str]:
    sets = element_sets(resource_type)
    keys = set(ALWAYS) | sets.mandatory
    for name in names:
        keys |= sets.choices.get(name, {name, f"_{name}"})
    return frozenset(keys)


def subset(resource: dict, keep: frozenset[str] | None, *, drop_text: bool = False) -> dict:
    """A copy holding only ``keep`` (or everything but ``text``), tagged SUBSETTED when anything went."""
    if keep is None:
        trimmed = {k: v for k, v in resource.items() if not (drop_text and k in ("text", "_text"))}
    else:
        trimmed = {k: v for k, v in resource.items() if k in keep}
    if len(trimmed) == len(resource):
        return resource
    meta = dict(trimmed.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    trimmed["meta"] = meta
    return trimmed


class Subsetter:
    """What one search asks to keep, resolved per resource type (types differ with includes)."""

    def __init__(self, summary: str | None, elements: tuple[str, ...], searched_type: str):
        self.summary = summary
        self.elements = elements
        self.searched_type = searched_type

    @property
    def active(self) -> bool:
        return bool(self.summary or self.elements)

    def apply(self, resource: dict) -> dict:
        resource_type = resource["resourceType"]
        if self.summary == "data":
            return subset(resource, None, drop_text=True)
        if self.summary:
            return subset(resource, keep_for_summary(resource_type, self.summary))
        if self.elements and resource_type == self.searched_type:
            # _elements names the searched type's elements; included resources come whole.
            return subset(resource, keep_for_elements(resource_type, self.elements))
        return resource
