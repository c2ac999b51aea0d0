"""Hold a resource to the official StructureDefinition snapshots of the profiles it claims.

The US Core 6.1.0 package (``hl7.fhir.us.core-6.1.0.tgz``) is read as published; nothing is
copied into the project. For each profile in ``meta.profile`` the snapshot is walked element by
element, only where the parent element is present (a required child of an absent optional
element asks nothing):

- cardinality: ``min`` ≥ 1 needs that many values (a primitive that only carries an extension,
  e.g. the DataAbsentReason on ``_effectiveDateTime``, counts), ``max`` caps them, ``max: 0``
  forbids the element;
- ``fixed[x]`` values must be equal, ``pattern[x]`` values contained;
- slices: each slice is matched by its slicing's discriminators (value, pattern, type, an
  extension's url) and must occur ``min`` times; its own constraints apply to its matches;
  a slice typed by a profile (an extension's definition) is checked against that profile too;
- required bindings, where the value set can be enumerated from the package (its compose lists
  the concepts, or names a complete code system the package holds); the others (VSAC, core
  FHIR value sets) are left to the hand checks beside this one.

Invariants written in FHIRPath are not evaluated (``support/us_core.py`` checks the few a
legacy row could break). ``ProfileChecker.problems(resource)`` returns what is wrong, empty
when every claim holds.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections import Counter, defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

from support.fhir_client import get_json, walk
from support.us_core import profile_problems

_REPO = Path(__file__).resolve().parents[2]
PACKAGE_NAME = "hl7.fhir.us.core-6.1.0.tgz"
_CANDIDATES = [_REPO.parent / "shared", Path("/work/shared")]


def us_core_package_path() -> Path | None:
    """The official package: ``$FHIR_FACADE_US_CORE_PACKAGE``, or the shared reference folder beside the repository."""
    if os.environ.get("FHIR_FACADE_US_CORE_PACKAGE"):
        path = Path(os.environ["FHIR_FACADE_US_CORE_PACKAGE"])
        return path if path.is_file() else None
    for shared in _CANDIDATES:
        path = shared / "reference" / "us-core" / PACKAGE_NAME
        if path.is_file():
            return path
    return None


class Package:
    """The package's conformance resources by canonical url (and the server CapabilityStatement)."""

    def __init__(self, path: Path):
        self.by_url: dict[str, dict] = {}
        self.capability: dict = {}
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not name.endswith(".json") or not name.split("-", 1)[0].isalpha():
                    continue
                kind = name.split("-", 1)[0]
                if kind not in ("StructureDefinition", "ValueSet", "CodeSystem", "CapabilityStatement"):
                    continue
                resource = json.load(archive.extractfile(member))  # type: ignore[arg-type]
                if kind == "CapabilityStatement" and resource.get("id") == "us-core-server":
                    self.capability = resource
                elif "url" in resource:
                    self.by_url[resource["url"]] = resource

    def structure(self, url: str) -> dict | None:
        found = self.by_url.get(url.split("|")[0])
        return found if found and found.get("resourceType") == "StructureDefinition" else None

    def codes(self, value_set: str) -> set[tuple[str, str]] | None:
        """The (system, code) pairs of a value set, or None when the package cannot enumerate it."""
        return self._expand(value_set.split("|")[0], frozenset())

    def _expand(self, url: str, seen: frozenset) -> set[tuple[str, str]] | None:
        vs = self.by_url.get(url)
        if not vs or vs.get("resourceType") != "ValueSet" or url in seen or "compose" not in vs:
            return None
        out: set[tuple[str, str]] = set()
        for include in vs["compose"].get("include", []):
            if include.get("filter"):
                return None
            parts: list[set[tuple[str, str]]] = []  # an include's system and value sets intersect
            system = include.get("system")
            if include.get("concept"):
                parts.append({(system, c["code"]) for c in include["concept"]})
            elif system:
                cs = self.by_url.get(system)
                if not cs or cs.get("resourceType") != "CodeSystem" or cs.get("content") != "complete":
                    return None
                parts.append({(system, code) for code in _all_codes(cs.get("concept", []))})
            for nested in include.get("valueSet", []):
                inner = self._expand(nested.split("|")[0], seen | {url})
                if inner is None:
                    return None
                parts.append(inner)
            found = set.intersection(*parts) if parts else set()
            out |= found
        for exclude in vs["compose"].get("exclude", []):
            out -= {(exclude.get("system"), c["code"]) for c in exclude.get("concept", [])}
        return out


def _all_codes(concepts: list[dict]) -> list[str]:
    return [code for c in concepts for code in [c["code"], *_all_codes(c.get("concept", []))]]


class Snapshot:
    """One profile's snapshot as a tree of element ids."""

    def __init__(self, definition: dict):
        self.url = definition["url"]
        self.elements = {e["id"]: e for e in definition["snapshot"]["element"]}
        self.root = definition["snapshot"]["element"][0]["id"]
        self.children: dict[str, list[str]] = defaultdict(list)  # id → ids of its child elements
        self.slices: dict[str, list[str]] = defaultdict(list)  # id → ids of its slices
        for element_id in self.elements:
            if element_id == self.root:
                continue
            head, _, last = element_id.rpartition(".")
            if ":" in last:
                name, _, _slice = last.partition(":")
                self.slices[f"{head}.{name}"].append(element_id)
            else:
                self.children[head].append(element_id)


class ProfileChecker:
    def __init__(self, package: Package):
        self.package = package
        self._snapshots: dict[str, Snapshot] = {}
        self._value_sets: dict[str, set[tuple[str, str]] | None] = {}
        self._rules: dict[tuple[str, str], tuple] = {}

    def snapshot(self, url: str) -> Snapshot | None:
        if url not in self._snapshots:
            definition = self.package.structure(url)
            if definition is None:
                return None
            self._snapshots[url] = self._pruned(Snapshot(definition))
        return self._snapshots[url]

    def _pruned(self, snap: Snapshot) -> Snapshot:
        """Drop the elements whose whole subtree asks nothing (most of a snapshot): the walk is then
        fast enough for every resource of the demo."""
        memo: dict[str, bool] = {}

        def asks(element_id: str) -> bool:
            if element_id not in memo:
                memo[element_id] = False  # cycles cannot occur in ids, but be safe
                element = snap.elements[element_id]
                binding = element.get("binding", {})
                memo[element_id] = (
                    element.get("min", 0) > 0
                    or element.get("max") != element.get("base", {}).get("max", element.get("max"))
                    or element.get("max") == "0"
                    or _fixed_or_pattern(element) is not None
                    or (binding.get("strength") == "required" and self._codes(binding.get("valueSet", "")) is not None)
                    or any(self.package.structure(p) is not None for p in _type_profiles(element))
                    or any(asks(i) for i in snap.children.get(element_id, []) + snap.slices.get(element_id, []))
                )
            return memo[element_id]

        for parent in list(snap.children):
            snap.children[parent] = [i for i in snap.children[parent] if asks(i)]
        for parent in list(snap.slices):
            snap.slices[parent] = [i for i in snap.slices[parent] if asks(i)]
        return snap

    @cached_property
    def profiles(self) -> set[str]:
        return {u for u, r in self.package.by_url.items() if r.get("resourceType") == "StructureDefinition" and r.get("kind") == "resource"}

    def problems(self, resource: dict) -> list[str]:
        out: list[str] = []
        for url in resource.get("meta", {}).get("profile", []):
            snapshot = self.snapshot(url)
            if snapshot is None:
                out.append(f"claims {url}, which the package does not define")
                continue
            name = url.rsplit("/", 1)[-1]
            out.extend(f"{name}: {p}" for p in self.check(snapshot, resource))
        return out

    def check(self, snapshot: Snapshot, instance: Any) -> list[str]:
        out: list[str] = []
        self._node(snapshot, snapshot.root, [instance], snapshot.root, out)
        return out

    # --- the walk ------------------------------------------------------------------------

    def _node(self, snap: Snapshot, element_id: str, instances: list, where: str, out: list[str]) -> None:
        """Check the children (and their slices) of ``element_id`` in each of its ``instances``."""
        for child_id in snap.children.get(element_id, []):
            element = snap.elements[child_id]
            name = child_id.rsplit(".", 1)[-1]
            for index, instance in enumerate(instances):
                if not isinstance(instance, dict):
                    continue
                values = _values(instance, name)
                key = values[0][0] if values and name.endswith("[x]") else name  # valueQuantity rather than value[x]
                here = f"{where}.{key}" if len(instances) == 1 else f"{where}[{index}].{key}"
                self._element(snap, child_id, element, values, here, out)

    def _rule(self, snap: Snapshot, element_id: str) -> tuple:
        """What one element asks, read once: min, max, fixed and pattern values, the codes of its
        required binding (when enumerable), the snapshots of the profiles its type names."""
        key = (snap.url, element_id)
        if key not in self._rules:
            element = snap.elements[element_id]
            maximum = element.get("max", "*")
            binding = element.get("binding", {})
            allowed = self._codes(binding["valueSet"]) if binding.get("strength") == "required" and binding.get("valueSet") else None
            profiles = [(p, self.snapshot(p)) for p in _type_profiles(element)]
            self._rules[key] = (
                element.get("min", 0),
                None if maximum == "*" else int(maximum),
                [v for k, v in element.items() if k.startswith("fixed")],
                [v for k, v in element.items() if k.startswith("pattern")],
                (binding.get("valueSet"), allowed) if allowed is not None else None,
                [(p, other) for p, other in profiles if other is not None and other.url != snap.url],
            )
        return self._rules[key]

    def _element(self, snap: Snapshot, element_id: str, element: dict, values: list[tuple[str, Any]], where: str, out: list[str]) -> None:
        minimum, maximum, fixed, patterns, binding, profiles = self._rule(snap, element_id)
        if len(values) < minimum:
            out.append(f"{where}: {len(values)} of at least {minimum}")
        if maximum is not None and len(values) > maximum:
            out.append(f"{where}: {len(values)} of at most {maximum}")
        if not values:
            return
        for expected in fixed:
            out.extend(f"{where}: {v!r} is not the fixed {expected!r}" for _, v in values if v != expected)
        for expected in patterns:
            out.extend(f"{where}: {v!r} does not contain the pattern {expected!r}" for _, v in values if not _contains(v, expected))
        if binding is not None:
            value_set, allowed = binding
            out.extend(f"{where}: {v!r} is not in {value_set}" for _, v in values if not _bound(v, allowed))
        for profile, other in profiles:
            for _, value in values:
                out.extend(f"{where} ({profile.rsplit('/', 1)[-1]}): {p}" for p in self.check(other, value))
        for slice_id in snap.slices.get(element_id, []):
            slice_element = snap.elements[slice_id]
            matches = [(k, v) for k, v in values if self._in_slice(snap, element, slice_id, k, v)]
            self._element(snap, slice_id, slice_element, matches, f"{where}:{slice_id.rsplit(':', 1)[-1]}", out)
        self._node(snap, element_id, [v for _, v in values], where, out)

    def _codes(self, value_set: str) -> set[tuple[str, str]] | None:
        if value_set not in self._value_sets:
            self._value_sets[value_set] = self.package.codes(value_set)
        return self._value_sets[value_set]

    def _in_slice(self, snap: Snapshot, sliced: dict, slice_id: str, key: str, value: Any) -> bool:
        discriminators = sliced.get("slicing", {}).get("discriminator", [])
        if not discriminators:
            return False
        for discriminator in discriminators:
            path = discriminator["path"]
            if discriminator["type"] == "type":
                if key != slice_id.rsplit(":", 1)[-1]:  # value[x]:valueQuantity matches the key valueQuantity
                    return False
                continue
            target_id = slice_id if path == "$this" else f"{slice_id}.{path}"
            target = snap.elements.get(target_id)
            expected = _fixed_or_pattern(target) if target else None
            if expected is None and path == "url":  # an extension slice: its url is its profile's
                profiles = _type_profiles(snap.elements[slice_id])
                expected = ("fixed", profiles[0]) if profiles else None
            if expected is None and target and target.get("binding", {}).get("strength") == "required":
                allowed = self._codes(target["binding"].get("valueSet", ""))  # slicing by value set (US Core's convention)
                if allowed is not None:
                    found = [value] if path == "$this" else _at_path(value, path)
                    if not any(_bound(v, allowed) and v for v in found):
                        return False
                    continue
            if expected is None:
                return False  # a discriminator this checker cannot read: the slice never matches, so a required one fails loudly
            kind, wanted = expected
            found = [value] if path == "$this" else _at_path(value, path)
            if not any((v == wanted) if kind == "fixed" else _contains(v, wanted) for v in found):
                return False
        return True


def _values(instance: dict, name: str) -> list[tuple[str, Any]]:
    """The values of one element of an instance, with the JSON key each came from."""
    if name.endswith("[x]"):
        prefix = name[:-3]
        keys = [k for k in instance if k.startswith(prefix) and len(k) > len(prefix) and k[len(prefix)].isupper()]
        keys += [k[1:] for k in instance if k.startswith(f"_{prefix}") and k[1:] not in instance and len(k) > len(prefix) + 1]
        return [(k, v) for k in keys for v in _listed(instance.get(k, instance.get(f"_{k}")))]
    if name in instance:
        return [(name, v) for v in _listed(instance[name])]
    if f"_{name}" in instance:  # a primitive given only by its extensions (data-absent-reason)
        return [(name, v) for v in _listed(instance[f"_{name}"])]
    return []


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def _at_path(value: Any, path: str) -> list:
    found = [value]
    for step in path.split("."):
        found = [item for v in found if isinstance(v, dict) for item in _listed(v.get(step))]
    return found


def _contains(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_contains(value.get(k), p) for k, p in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_contains(v, p) for v in value) for p in pattern)
    return value == pattern


def _fixed_or_pattern(element: dict) -> tuple[str, Any] | None:
    for key, value in element.items():
        if key.startswith("fixed"):
            return "fixed", value
        if key.startswith("pattern"):
            return "pattern", value
    return None


def _type_profiles(element: dict) -> list[str]:
    return [p for t in element.get("type", []) for p in t.get("profile", [])]


def _bound(value: Any, allowed: set[tuple[str, str]]) -> bool:
    if isinstance(value, str):
        return value in {code for _, code in allowed}
    if isinstance(value, dict) and "coding" in value:
        return any((c.get("system"), c.get("code")) in allowed for c in value["coding"])
    if isinstance(value, dict) and "code" in value:
        return (value.get("system"), value.get("code")) in allowed
    return not (
        isinstance(value, dict) and "text" in value
    )  # text alone meets no required binding; an extension-only primitive asks nothing


# --- walking a server ------------------------------------------------------------------

# Served by the terminology endpoints, not from legacy rows; AuditEvent is the façade's own record.
NOT_LEGACY = {"ConceptMap", "CodeSystem", "ValueSet", "AuditEvent"}


def served_types(client) -> list[str]:
    return [r["type"] for r in get_json(client, "/fhir/metadata")["rest"][0]["resource"] if r["type"] not in NOT_LEGACY]


def claims_and_problems(client, checker: ProfileChecker, resource_type: str) -> tuple[Counter, dict[str, list[str]]]:
    """Profile → how many resources claim it; resource id → what is wrong with its claims."""
    claims: Counter = Counter()
    problems: dict[str, list[str]] = {}
    for page in walk(client, f"/fhir/{resource_type}?_count=1000"):
        for entry in page.get("entry", []):
            resource = entry["resource"]
            claims.update(resource.get("meta", {}).get("profile", []))
            found = checker.problems(resource) + profile_problems(resource)
            if found:
                problems[resource["id"]] = found
    return claims, problems
