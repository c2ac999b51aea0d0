"""Resource templates: the shape of a FHIR resource with value expressions at the leaves.

A template is the resource written out as it should look, where any leaf may be a
value expression (see :mod:`values`). Empty results are pruned: an element whose
data columns are all absent disappears, even if it also holds constants (a
``{system: loinc, code: {column: x}}`` coding vanishes when x is NULL), so the
output never carries half-built elements.

A primitive element FHIR requires (``Observation.status``, ``Immunization.occurrence[x]``)
whose value is absent or junk in a row gets the DataAbsentReason extension instead
(``_status: {extension: [data-absent-reason: unknown]}``), so the resource stays valid.

Each template is compiled once into a single flat Python function (the way
``dataclasses`` writes ``__init__``): building a resource is then straight-line
code with no recursion or per-node calls, which is most of a search's CPU time.
"""

from __future__ import annotations

from typing import Any

from legacy_adapters.mapping.fhirdefs import Element, choice_groups, elements
from legacy_adapters.mapping.values import CompileContext, RowFn, Steps, compile_value, is_value_expression, value_steps
from legacy_adapters.mapping.yamlpos import plain

_EMPTY: tuple[object, ...] = (None, [], {})
DATA_ABSENT = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}


def compile_template(node: Any, ctx: CompileContext, where: str = "resource", resource_type: str | None = None) -> RowFn:
    return _Writer(ctx).function(node, where, resource_type)


class _Writer:
    """Emits Python statements that compute each template node into a local variable."""

    def __init__(self, ctx: CompileContext, fold: bool = True):
        self.ctx = ctx
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"_EMPTY": _EMPTY}
        self.count = 0
        self.fold = fold  # constant objects and lists become one literal (see constant)

    def function(self, node: Any, where: str, fhir_type: str | None) -> RowFn:
        """``build(row)``: the node's code written out, compiled."""
        result, _ = self.node(node, where, depth=1, fhir_type=fhir_type)
        source = "def build(row):\n" + "".join(self.lines) + f"    return {result}\n"
        namespace = dict(self.namespace)
        exec(compile(source, f"<template {where}>", "exec"), namespace)  # noqa: S102 - our own generated code
        build = namespace["build"]
        build.source = source  # for debugging a mapping: print(branch.build.source)
        return build

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line + "\n")

    def node(self, node: Any, where: str, depth: int, fhir_type: str | None = None) -> tuple[str, bool]:
        """Emit code for ``node``; return the variable holding its value (None when empty) and
        whether it is constant (no data behind it). ``fhir_type`` is the node's FHIR type, when known."""
        if is_value_expression(node):
            return self.value(node, where, depth), "const" in node
        if self.fold and isinstance(node, (dict, list)) and _constant(node):
            return self.constant(node, where, depth, fhir_type), True
        if isinstance(node, dict):
            return self.object(node, where, depth, fhir_type)
        if isinstance(node, list):
            return self.list(node, where, depth, fhir_type)
        name = self._name("k")
        self.namespace[name] = plain(node)
        return name, True

    def constant(self, node: Any, where: str, depth: int, fhir_type: str | None) -> str:
        """A subtree without data (a profile list, a fixed category): built once here, then
        written as a Python literal, which makes a fresh copy per row in one step (resources
        built from one template never share a dict or list)."""
        value = _Writer(self.ctx, fold=False).function(node, where, fhir_type)(None)
        var = self._name("c")
        self.emit(depth, f"{var} = {value!r}")
        return var

    def value(self, spec: dict, where: str, depth: int) -> str:
        var = self._name("v")
        steps = value_steps(spec, self.ctx, where)
        if steps is not None:  # the common cases, inlined: a column or a hook, then transforms
            self.steps(steps, var, depth)
        else:
            function = self._name("f")
            self.namespace[function] = compile_value(spec, self.ctx, where)
            self.emit(depth, f"{var} = {function}(row)")
        if "hook" in spec or "split_codings" in spec:  # may hand back [] or {}
            self.emit(depth, f"if {var} in _EMPTY:")
            self.emit(depth + 1, f"{var} = None")
        return var

    def steps(self, steps: Steps, var: str, depth: int) -> None:
        """Fetch (and trim: '' is absent), call the hook, then each transform while present."""
        names = [var] if steps.hook is None else [self._name("a") for _ in steps.slots]
        for name, slot in zip(names, steps.slots):
            self.emit(depth, f"{name} = row[{slot}]")
            if steps.trim:
                self.emit(depth, f"if {name}.__class__ is str:")
                self.emit(depth + 1, f"{name} = {name}.rstrip() or None")
        if steps.hook is not None:
            hook = self._name("f")
            self.namespace[hook] = steps.hook
            self.emit(depth, f"{var} = {hook}({', '.join(names)})")
        for transform in steps.transforms:
            function = self._name("t")
            self.namespace[function] = transform
            self.emit(depth, f"if {var} is not None:")
            depth += 1
            self.emit(depth, f"{var} = {function}({var})")

    def object(self, node: dict, where: str, depth: int, fhir_type: str | None = None) -> tuple[str, bool]:
        var, has_data = self._name("o"), self._name("h")
        found = (elements(fhir_type) or {}) if fhir_type else {}
        children = []
        for key, child in node.items():
            element = found.get(str(key))
            child_type = element.type if element is not None and not element.primitive else None
            children.append((key, *self.node(child, f"{where}.{key}", depth, child_type)))
        all_constant = all(constant for _, _, constant in children)
        self.emit(depth, f"{var} = {{}}")
        self.emit(depth, f"{has_data} = {all_constant}")
        for key, child_var, constant in children:
            if constant:
                self.emit(depth, f"{var}[{key!r}] = {child_var}")
                continue
            self.emit(depth, f"if {child_var} is not None:")
            self.emit(depth + 1, f"{var}[{key!r}] = {child_var}")
            self.emit(depth + 1, f"{has_data} = True")
        self.data_absent(node, found, {key: child_var for key, child_var, _ in children}, var, depth)
        self.emit(depth, f"if not ({has_data} and {var}):")
        self.emit(depth + 1, f"{var} = None")
        return var, all_constant

    def data_absent(self, node: dict, found: dict[str, Element], variables: dict, var: str, depth: int) -> None:
        """Required primitives (and choices) made from data: DataAbsentReason when a row has none."""
        groups: list[list[str]] = []
        for element in found.values():
            if element.required and element.primitive and not element.is_list and not element.choice:
                groups.append([element.name])
        for members in choice_groups(found).values():
            if members[0].choice_required:
                groups.append([m.name for m in members if m.name in node])
        for names in groups:
            present = [name for name in names if name in node]
            if not present or any(f"_{name}" in node or not is_value_expression(node[name]) for name in present):
                continue
            absent = " and ".join(f"{variables[name]} is None" for name in present)
            self.emit(depth, f"if {absent}:")
            self.emit(depth + 1, f"{var}[{'_' + present[0]!r}] = {DATA_ABSENT!r}")

    def list(self, node: list, where: str, depth: int, fhir_type: str | None = None) -> tuple[str, bool]:
        var = self._name("l")
        items = [(self.node(item, f"{where}[{i}]", depth, fhir_type), item) for i, item in enumerate(node)]
        self.emit(depth, f"{var} = []")
        for (item_var, _constant), item in items:
            self.emit(depth, f"if {item_var} is not None:")
            if is_value_expression(item):  # a hook or code string may expand to several items
                self.emit(depth + 1, f"if {item_var}.__class__ is list:")
                self.emit(depth + 2, f"{var}.extend({item_var})")
                self.emit(depth + 1, "else:")
                self.emit(depth + 2, f"{var}.append({item_var})")
            else:
                self.emit(depth + 1, f"{var}.append({item_var})")
        self.emit(depth, f"if not {var}:")
        self.emit(depth + 1, f"{var} = None")
        return var, all(constant for (_, constant), _ in items)


def _constant(node: Any) -> bool:
    """No data behind it: plain values and ``{const: …}`` all the way down (literals repr alike)."""
    if is_value_expression(node):
        return set(node) == {"const"} and _literal(node["const"])
    if isinstance(node, dict):
        return all(isinstance(key, str) and _constant(child) for key, child in node.items())
    if isinstance(node, list):
        return all(_constant(item) for item in node)
    return _literal(node)


def _literal(value: Any) -> bool:
    if isinstance(value, (dict, list)):
        return all(_literal(v) for v in (value.values() if isinstance(value, dict) else value))
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))  # repr of nan and inf is no literal
    return value is None or isinstance(value, (str, int, bool))
