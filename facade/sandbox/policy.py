"""A de-identification policy, read from YAML and checked strictly (``file:line:column`` errors).

The policy is an allow-list: per served resource type it names the elements that may leave,
each with an action; an element it does not name is removed, so a mapping that grows new
elements cannot leak them, and a resource type it does not name is not served at all.

Actions (on an element path such as ``code`` or ``hospitalization.dischargeDisposition``):

- ``keep``: the element, with the rules every value obeys (below); naming a child path of a
  kept element turns that element into an allow-list of the named children.
- ``remove``: gone (the same as not naming it; written to say so).
- ``redact``: kept in shape, every free-text string in it replaced by ``[redacted]``.
- ``generalise``: an Address becomes its state, 3-digit ZIP (``000`` for the restricted ZIP3s)
  and country; a date becomes its year, and a birth date implying an age over 89 is masked.
- ``pseudonymise``: a Reference, rewritten to the pseudonym of its target.

Rules every value obeys, wherever it is: dates follow the policy's ``dates`` (``year``: reduced
to the year, instants removed; ``shift``: moved by the patient's offset); references are
pseudonymised and lose their display and identifier; extensions pass only when their URL is
listed under ``extensions``; Identifier, HumanName, ContactPoint, Address (unless generalised),
Attachment, Narrative and Signature values are removed; a resource with a modifierExtension
the policy does not list is not served.

``search`` names, per type, the search parameters offered and the element each one reads;
an element that does not leave cannot be searched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legacy_adapters.mapping import yamlpos
from legacy_adapters.mapping.fhirdefs import DATE_TYPES, PRIMITIVES, RESOURCE_TYPES, elements

SHIPPED = Path(__file__).resolve().parent / "policies"
ACTIONS = ("keep", "remove", "redact", "generalise", "pseudonymise")
DATE_MODES = ("year", "shift")
# Types whose values identify whoever they describe: never kept as they are.
IDENTIFYING_TYPES = frozenset({"Identifier", "HumanName", "ContactPoint", "Address", "Attachment", "Narrative", "Signature"})
TEXT_TYPES = frozenset({"string", "markdown"})
_TOP_KEYS = ("policy", "title", "description", "dates", "shift_days", "restricted_zip3", "extensions", "resources")
_TYPE_KEYS = ("patient", "elements", "search")


class PolicyError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Rule:
    """An element's action; ``children`` (when any are named) is the allow-list below it."""

    action: str
    type: str
    children: dict[str, Rule] | None = None


@dataclass(frozen=True)
class SearchRule:
    param: str
    path: str  # the element it reads
    type: str  # that element's FHIR type


@dataclass(frozen=True)
class TypePolicy:
    resource_type: str
    patient: str | None  # "id" (the Patient itself), a Reference element naming the patient, or None
    elements: dict[str, Rule]
    search: dict[str, SearchRule] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    description: str
    dates: str  # year | shift
    shift_days: int
    restricted_zip3: frozenset[str]
    extensions: frozenset[str]
    resources: dict[str, TypePolicy]


def policy_file(name_or_path: str) -> Path:
    """A shipped policy by name (``safe-harbor``, ``limited-data-set``) or a file path."""
    shipped = SHIPPED / f"{name_or_path}.yaml"
    return shipped if "/" not in name_or_path and shipped.exists() else Path(name_or_path)


def load_policy(name_or_path: str) -> Policy:
    path = policy_file(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read the policy ({exc.strerror})"]) from None
    try:
        document = yamlpos.load(text, str(path))
    except Exception as exc:  # noqa: BLE001 - any YAML error, reported with its place
        raise PolicyError([f"{path}: not valid YAML: {exc}"]) from None
    return _Reader(str(path)).policy(document)


class _Reader:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[str] = []

    def error(self, mark: yamlpos.Mark | None, message: str) -> None:
        self.problems.append(f"{mark or self.file}: {message}")

    def mapping(self, node: Any, where: Any, what: str) -> dict:
        if not isinstance(node, dict):
            self.error(yamlpos.mark_of(node) or yamlpos.mark_of(where), f"{what} must be a mapping")
            return {}
        return node

    def known_keys(self, node: dict, allowed: tuple[str, ...], what: str) -> None:
        for key in node:
            if key not in allowed:
                self.error(yamlpos.key_mark(node, key), f"unknown key {key!r} in {what} (expected one of: {', '.join(allowed)})")

    def policy(self, document: Any) -> Policy:
        top = self.mapping(document, document, "the policy")
        self.known_keys(top, _TOP_KEYS, "the policy")
        for key in ("policy", "title", "dates", "resources"):
            if key not in top:
                self.error(yamlpos.mark_of(top), f"missing {key!r}")
        dates = top.get("dates", "year")
        if dates not in DATE_MODES:
            self.error(yamlpos.mark_of(top, "dates"), f"dates must be one of {', '.join(DATE_MODES)}, not {dates!r}")
        shift_days = top.get("shift_days", 0)
        if dates == "shift" and (not isinstance(shift_days, int) or isinstance(shift_days, bool) or not 1 <= shift_days <= 3650):
            where = yamlpos.mark_of(top, "shift_days") if "shift_days" in top else yamlpos.mark_of(top, "dates")
            self.error(where, "dates: shift needs shift_days, 1 to 3650")
        if dates != "shift" and "shift_days" in top:
            self.error(yamlpos.key_mark(top, "shift_days"), "shift_days applies only to dates: shift")
        zip3 = top.get("restricted_zip3", [])
        if not isinstance(zip3, list) or not all(isinstance(z, str) and len(z) == 3 and z.isdigit() for z in zip3):
            self.error(yamlpos.mark_of(top, "restricted_zip3"), "restricted_zip3 must be a list of 3-digit strings (quoted)")
            zip3 = []
        extensions = top.get("extensions", [])
        if not isinstance(extensions, list) or not all(isinstance(u, str) for u in extensions):
            self.error(yamlpos.mark_of(top, "extensions"), "extensions must be a list of extension URLs")
            extensions = []
        resources: dict[str, TypePolicy] = {}
        types = self.mapping(top.get("resources", {}), top, "resources")
        for resource_type, spec in types.items():
            if resource_type not in RESOURCE_TYPES:
                self.error(yamlpos.key_mark(types, resource_type), f"{resource_type!r} is not a FHIR R4 resource type")
                continue
            resources[resource_type] = self.type_policy(resource_type, self.mapping(spec, types, resource_type))
        for key in ("policy", "title", "description"):
            if key in top and not isinstance(top[key], str):
                self.error(yamlpos.mark_of(top, key), f"{key} must be text")
        if self.problems:
            raise PolicyError(self.problems)
        return Policy(
            name=str(top["policy"]),
            title=str(top["title"]),
            description=str(top.get("description", "")),
            dates=str(dates),
            shift_days=int(shift_days) if dates == "shift" else 0,
            restricted_zip3=frozenset(str(z) for z in zip3),
            extensions=frozenset(str(u) for u in extensions),
            resources=resources,
        )

    def type_policy(self, resource_type: str, spec: dict) -> TypePolicy:
        self.known_keys(spec, _TYPE_KEYS, resource_type)
        tree: dict[str, Rule] = {}
        listed = self.mapping(spec.get("elements", {}), spec, f"{resource_type}.elements")
        for path, action in listed.items():
            self.element(resource_type, tree, str(path), action, yamlpos.key_mark(listed, path))
        patient = spec.get("patient")
        if patient is not None and patient != "id":
            rule = _find(tree, str(patient))
            if rule is None or rule.action != "pseudonymise":
                self.error(yamlpos.mark_of(spec, "patient"), f"patient: {patient!r} must be 'id' or a Reference the policy pseudonymises")
        search: dict[str, SearchRule] = {}
        params = self.mapping(spec.get("search", {}), spec, f"{resource_type}.search")
        for param, path in params.items():
            mark = yamlpos.mark_of(params, param)
            if param == "_id" and path == "id":
                search["_id"] = SearchRule("_id", "id", "id")
                continue
            rule = _find(tree, str(path))
            if rule is None or rule.action not in ("keep", "pseudonymise", "generalise"):
                self.error(mark, f"search parameter {param!r} reads {path!r}, which this policy does not let leave")
                continue
            search[str(param)] = SearchRule(str(param), str(path), rule.type)
        return TypePolicy(resource_type, str(patient) if patient is not None else None, tree, search)

    def element(self, resource_type: str, tree: dict[str, Rule], path: str, action: Any, mark: yamlpos.Mark | None) -> None:
        if action not in ACTIONS:
            self.error(mark, f"{resource_type}.{path}: unknown action {action!r} (expected one of: {', '.join(ACTIONS)})")
            return
        type_name, level = resource_type, tree
        parts = path.split(".")
        for depth, part in enumerate(parts):
            found = elements(type_name) or {}
            if part in ("id", "resourceType") and depth == 0:
                self.error(mark, f"{resource_type}.{part} is handled by the sandbox itself (ids are always pseudonymised)")
                return
            definition = found.get(part)
            if definition is None:
                self.error(mark, f"{resource_type}.{'.'.join(parts[: depth + 1])} is not an element of FHIR R4 {type_name}")
                return
            type_name = definition.type
            if depth < len(parts) - 1:
                parent = level.get(part)
                if parent is None:
                    parent = level[part] = Rule("keep", type_name, {})
                elif parent.action != "keep":
                    self.error(mark, f"{resource_type}.{path}: its parent is '{parent.action}', so it cannot be named")
                    return
                if parent.children is None:
                    parent.children = {}
                level = parent.children
        problem = _unfit(str(action), type_name)
        if problem:
            self.error(mark, f"{resource_type}.{path} ({type_name}): {problem}")
            return
        existing = level.get(parts[-1])
        children = existing.children if existing is not None else None
        level[parts[-1]] = Rule(str(action), type_name, children if action == "keep" else None)


def _unfit(action: str, type_name: str) -> str | None:
    if action == "keep":
        if type_name in IDENTIFYING_TYPES:
            return "this type identifies people; use remove (or generalise for an Address)"
        if type_name == "Reference":
            return "references are rewritten to pseudonyms; say pseudonymise"
    if action == "pseudonymise" and type_name != "Reference":
        return "only a Reference can be pseudonymised (resource ids always are)"
    if action == "generalise" and type_name != "Address" and type_name not in DATE_TYPES - {"time"}:
        return "generalise applies to an Address or a date"
    if action == "redact" and type_name in PRIMITIVES and type_name not in TEXT_TYPES:
        return "redact applies to free text or an element holding it"
    return None


def _find(tree: Mapping[str, Rule], path: str) -> Rule | None:
    """The rule governing ``path``: its own, or that of a kept ancestor with no allow-list below it."""
    level: Mapping[str, Rule] | None = tree
    rule = None
    for part in path.split("."):
        if level is None:  # below a kept element with no children named: the whole subtree leaves
            return rule
        rule = level.get(part)
        if rule is None:
            return None
        level = rule.children
    return rule
