"""Checking a resource template against FHIR R4 when the mapping loads.

Every key of ``resource:`` must be an element of its FHIR type (``_element`` for a primitive's
extensions); a repeating element takes a list and a single one does not; an element of a
complex type takes an object, or a value expression that gives one (a hook, a code-table
lookup); constants, value maps and dates must fit the element's type; codes of a required
binding must be among its codes; references name resource types the element may point at;
required elements must be there. Value expressions are checked against the format too.
"""

from __future__ import annotations

import re
from typing import Any

from legacy_adapters.mapping.errors import Problems
from legacy_adapters.mapping.fhirdefs import (
    DATE_TYPES,
    INTEGER_TYPES,
    RESOURCE_TYPES,
    TEXT_TYPES,
    Element,
    choice_groups,
    elements,
)
from legacy_adapters.mapping.format import VALUE_SOURCES
from legacy_adapters.mapping.validate import check, definition, suggest
from legacy_adapters.mapping.yamlpos import key_mark, mark_of

_DATE_TEXT = re.compile(r"-?\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")
ANY, SCALAR, TEXT, NUMBER, BOOLEAN, DATE, CODING, CODINGS = "any", "scalar", "text", "number", "boolean", "date", "coding", "codings"
RANGE = "range"  # a referenceRange item (the `range` transform)


def is_value_expression(node: Any) -> bool:
    return isinstance(node, dict) and any(key in node for key in VALUE_SOURCES)


class TemplateChecker:
    """Checks the templates of one mapping; ``names`` knows the mapping's hooks, code tables and
    crosswalks (``hooks``, ``code_tables``, ``crosswalks``, ``units`` – sets of names, or None
    when unknown)."""

    def __init__(self, problems: Problems, names: dict[str, set[str] | None]):
        self.problems = problems
        self.names = names

    def resource(self, type_name: str, template: Any, where: str) -> None:
        found = elements(type_name)
        if found is None or not isinstance(template, dict):
            return
        for key in ("resourceType", "id"):
            if key in template:
                what = "the resource type" if key == "resourceType" else "the id (from the source's `id:`)"
                self.problems.add(f"'{key}' is set by the engine: {what}", key_mark(template, key), where)
        self.object(type_name, found, {k: v for k, v in template.items() if k not in ("resourceType", "id")}, "resource", where, template)

    # -- structure ----------------------------------------------------------------------------
    def object(self, type_name: str, found: dict[str, Element], node: dict, path: str, where: str, marks: Any = None) -> None:
        marks = node if marks is None else marks
        for key, child in node.items():
            child_path = f"{path}.{key}"
            name = str(key)
            if name.startswith("_") and name[1:] in found:
                self.extension_of(found[name[1:]], child, child_path, where, marks, key)
                continue
            element = found.get(name)
            if element is None:
                self.problems.add(self._unknown(type_name, found, name), key_mark(marks, key), where)
                continue
            if child is None:
                continue
            self.element(element, child, child_path, where, marks, key)
        present = {str(k) for k in node}
        for element in found.values():
            if element.required and not element.choice and element.name not in present:
                self.problems.add(
                    f"{path}: {type_name} needs '{element.name}' ({element.label}, required in FHIR R4)", mark_of(marks), where
                )
        for group, members in choice_groups(found).items():
            if members[0].choice_required and not present & {m.name for m in members}:
                self.problems.add(
                    f"{path}: {type_name} needs {group}[x] (required in FHIR R4): one of {', '.join(m.name for m in members)}",
                    mark_of(marks),
                    where,
                )

    def _unknown(self, type_name: str, found: dict[str, Element], name: str) -> str:
        groups = choice_groups(found)
        if name in groups:
            options = ", ".join(m.name for m in groups[name])
            return f"{type_name} has no element '{name}': {name}[x] is written with its type, one of {options}"
        return f"{type_name} has no element '{name}' in FHIR R4{suggest(name, found)}"

    def element(self, element: Element, node: Any, path: str, where: str, parent: Any, key: Any) -> None:
        mark = mark_of(parent, key)
        if isinstance(node, list):
            if not element.is_list:
                self.problems.add(f"{path} holds one {element.type} in FHIR R4, not a list: remove the '- '", mark, where)
                return
            for i, item in enumerate(node):
                if item is not None:
                    self.item(element, item, f"{path}[{i}]", where, node, i, in_list=True)
            return
        if element.is_list and not (is_value_expression(node) and self.kinds(node) & {ANY, CODINGS}):
            self.problems.add(
                f"{path} is {element.label} in FHIR R4: write it as a YAML list ('- ' before the item, or [ … ])", mark, where
            )
            return
        self.item(element, node, path, where, parent, key, in_list=False)

    def item(self, element: Element, node: Any, path: str, where: str, parent: Any, key: Any, in_list: bool) -> None:
        mark = mark_of(parent, key)
        if is_value_expression(node):
            self.value(node, path, where, parent, key)
            self.value_fits(element, node, path, where, mark, in_list)
        elif isinstance(node, dict):
            if element.primitive:
                hint = self._not_a_value_hint(node)
                self.problems.add(f"{path} is {_a(element.type)} in FHIR R4: a value, not an object{hint}", mark, where)
                return
            found = elements(element.type)
            if found is None:
                return
            if element.type == "Reference":
                self.reference(element, node, path, where)
            self.object(element.type, found, node, path, where)
        else:
            self.constant(element, node, path, where, mark)

    def _not_a_value_hint(self, node: dict) -> str:
        keys = [str(k) for k in node]
        close = [suggest(k, VALUE_SOURCES) for k in keys]
        hint = next((c for c in close if c), "")
        if hint:
            return f" (a value expression needs one of {', '.join(VALUE_SOURCES)}{hint})"
        return f" (a value expression needs one of {', '.join(VALUE_SOURCES)})"

    def extension_of(self, element: Element, node: Any, path: str, where: str, parent: Any, key: Any) -> None:
        if not element.primitive:
            self.problems.add(
                f"{path}: '_' extensions belong to primitive elements; {element.name} is {_a(element.type)}", key_mark(parent, key), where
            )
        elif is_value_expression(node):
            self.value(node, path, where, parent, key)
        elif isinstance(node, dict) and not element.is_list:
            self.object("Element", elements("Element") or {}, node, path, where)

    def reference(self, element: Element, node: dict, path: str, where: str) -> None:
        value = node.get("reference")
        text = value.get("template", value.get("const")) if isinstance(value, dict) else value
        if (
            not isinstance(text, str)
            or "/" not in text
            or text.startswith(("#", "urn:", "http:", "https:"))
            or "${" in text.partition("/")[0]
        ):
            return
        target = text.partition("/")[0]
        mark = (
            mark_of(value, "template" if isinstance(value, dict) and "template" in value else "const")
            if isinstance(value, dict)
            else mark_of(node, "reference")
        )
        if target not in RESOURCE_TYPES:
            self.problems.add(f"{path}.reference: '{target}' is not a FHIR R4 resource type{suggest(target, RESOURCE_TYPES)}", mark, where)
        elif element.targets and "Resource" not in element.targets and target not in element.targets:
            self.problems.add(f"{path} may point at {', '.join(element.targets)} in FHIR R4, not {target}", mark, where)

    # -- values -------------------------------------------------------------------------------
    def constant(self, element: Element, node: Any, path: str, where: str, mark: Any) -> None:
        if not element.primitive:
            self.problems.add(f"{path} is {_a(element.type)} in FHIR R4 (an object), not the constant {node!r}", mark, where)
            return
        problem = _constant_problem(element, node)
        if problem:
            self.problems.add(f"{path} is {problem}", mark, where)

    def value(self, node: dict, path: str, where: str, parent: Any = None, key: Any = None) -> None:
        """A value expression on its own: its keys (the format), and the names it uses."""
        check(node, definition("value"), path, self.problems, parent, key)
        for name, kind in (("hook", "hooks"), ("lookup", "code_tables"), ("crosswalk", "crosswalks"), ("units", "units")):
            used = node.get(name)
            known = self.names.get(kind)
            if isinstance(used, str) and "${" not in used and known is not None and used not in known:
                what = {
                    "hooks": "the hooks module",
                    "code_tables": "code_tables",
                    "crosswalks": "the terminology's crosswalks",
                    "units": "the terminology's unit tables",
                }[kind]
                self.problems.add(f"{path}: {name} '{used}' is not defined in {what}{suggest(used, known)}", mark_of(node, name), where)
        for needs, needed in (("otherwise", "map"), ("convert", "units"), ("get", "lookup"), ("columns", "hook"), ("args", "hook")):
            if needs in node and needed not in node:
                self.problems.add(f"{path}: '{needs}' needs '{needed}'", key_mark(node, needs), where)
        if "as" in node and "date" not in node and not _dated_source(node):
            self.problems.add(
                f"{path}: 'as' is for dates: give the column's 'date' format, or read a DATE/DATETIME column", key_mark(node, "as"), where
            )
        sources = [k for k in VALUE_SOURCES if k in node]
        if len(sources) > 1:
            self.problems.add(f"{path}: a value expression has one source, found {', '.join(sources)}", mark_of(node), where)
        for i, item in enumerate(node.get("first") or []):
            if is_value_expression(item):
                self.value(item, f"{path}.first[{i}]", where, node["first"], i)

    def kinds(self, node: dict) -> set[str]:
        """What a value expression can give: text, number, boolean, date, coding(s), a column's own
        value (scalar), or anything (a hook)."""
        if "first" in node:
            return set().union(*(self.kinds(i) for i in node["first"] if is_value_expression(i))) or {ANY}
        if "hook" in node or ("units" in node and "column" not in node):
            return {ANY}
        if "range" in node:
            return {RANGE}
        if "crosswalk" in node or "split_codings" in node:
            return {CODINGS}
        if "lookup" in node:
            return {TEXT} if node.get("get") in ("code", "system", "display") else {CODING}
        if "map" in node:
            values = [v for v in [*node["map"].values(), node.get("otherwise"), node.get("default")] if v is not None and v != "keep"]
            return {_kind_of(v) for v in values} | ({TEXT} if node.get("otherwise") == "keep" else set()) or {ANY}
        if "date" in node or "parts" in node or "as" in node:
            return {DATE}
        if "type" in node:
            return {{"decimal": NUMBER, "integer": NUMBER, "boolean": BOOLEAN}.get(node["type"], TEXT)}
        if "const" in node:
            return {_kind_of(node["const"])}
        return {SCALAR} if "column" in node else {TEXT}

    def value_fits(self, element: Element, node: dict, path: str, where: str, mark: Any, in_list: bool) -> None:
        if "first" in node:  # each alternative must fit the element
            for i, item in enumerate(node["first"]):
                if is_value_expression(item):
                    self.value_fits(element, item, f"{path}.first[{i}]", where, mark_of(node["first"], i), in_list)
            return
        kinds = self.kinds(node)
        if ANY in kinds:
            return
        if kinds == {RANGE}:
            if element.type != "ObservationReferenceRange":
                self.problems.add(f"{path} is {_a(element.type)} in FHIR R4; 'range' gives a referenceRange item", mark, where)
            return
        if element.primitive:
            if kinds & {CODING, CODINGS}:
                self.problems.add(f"{path} is {_a(element.type)} in FHIR R4; this value gives Coding(s)", mark, where)
            elif DATE in kinds and element.type not in DATE_TYPES and element.type not in TEXT_TYPES:
                self.problems.add(f"{path} is {_a(element.type)} in FHIR R4, not a date", mark, where)
            elif DATE in kinds:
                self._date_fits(element, node, path, where, mark)
            elif element.type in DATE_TYPES and not kinds <= {TEXT}:  # a column's raw value, a number…
                self.problems.add(f"{path} is {_a(element.type)} in FHIR R4; give a date ('date:' format or a DATE column)", mark, where)
            for value in _mapped_values(node):
                problem = _constant_problem(element, value)
                if problem:
                    self.problems.add(f"{path} is {problem} (a value this expression gives)", mark, where)
            return
        if kinds <= {CODING, CODINGS} and element.type == "Coding":
            if CODINGS in kinds and not in_list:
                self.problems.add(f"{path}: this value gives several Codings: write it inside a list", mark, where)
            return
        hint = " (write {reference: {template: …}})" if element.type == "Reference" else ""
        self.problems.add(
            f"{path} is {_a(element.type)} in FHIR R4 (an object); this value gives {' or '.join(sorted(kinds))}{hint}", mark, where
        )

    def _date_fits(self, element: Element, node: dict, path: str, where: str, mark: Any) -> None:
        kind = node.get("as")
        has_time = "%H" in str(node.get("date", "")) or (node.get("date") is None and "parts" not in node and kind != "date")
        if element.type == "date" and kind != "date" and has_time and "parts" not in node:
            self.problems.add(f"{path} is a FHIR date: add `as: date` (this value gives a dateTime)", mark, where)
        elif element.type == "instant" and kind != "instant":
            self.problems.add(f"{path} is a FHIR instant: add `as: instant`", mark, where)
        elif element.type in ("dateTime", "date") and kind == "instant" and element.type == "date":
            self.problems.add(f"{path} is a FHIR date, not an instant", mark, where)


def _dated_source(node: dict) -> bool:
    return "column" in node or "first" in node or "parts" in node


def _mapped_values(node: dict) -> list[Any]:
    values = [*node["map"].values(), node.get("otherwise"), node.get("default")] if "map" in node else [node.get("default")]
    if "const" in node:
        values.append(node["const"])
    return [v for v in values if v is not None and v != "keep" and not (isinstance(v, str) and "${" in v)]


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, (int, float)):
        return NUMBER
    return TEXT if isinstance(value, str) else ANY


def _constant_problem(element: Element, value: Any) -> str | None:
    if isinstance(value, str) and "${" in value:
        return None
    kind = element.type
    if kind == "boolean" and not isinstance(value, bool):
        return f"a boolean in FHIR R4: {value!r} is not true or false"
    if kind in INTEGER_TYPES and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{_a(kind)} in FHIR R4: {value!r} is not an integer"
    if kind == "decimal" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"a decimal in FHIR R4: {value!r} is not a number"
    if kind in TEXT_TYPES and not isinstance(value, str):
        return f"{_a(kind)} in FHIR R4: {value!r} is not text (quote it)"
    if kind in DATE_TYPES and kind != "time" and not (isinstance(value, str) and _DATE_TEXT.fullmatch(value)):
        return f"{_a(kind)} in FHIR R4: {value!r} is not one (quote dates: '2024-01-31')"
    if element.codes is not None and isinstance(value, str) and value not in element.codes:
        return f"a code of a required binding in FHIR R4: '{value}' is not one of {', '.join(element.codes)}{suggest(value, element.codes)}"
    return None


def _a(type_name: str) -> str:
    return f"{'an' if type_name[0].lower() in 'aeiou' else 'a'} {type_name}"
