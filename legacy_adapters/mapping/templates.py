"""Resource templates: the shape of a FHIR resource with value expressions at the leaves.

A template is the resource written out as it should look, where any leaf may be a
value expression (see :mod:`values`). Compiled once per source into nested
closures. Empty results are pruned: an element whose data columns are all absent
disappears, even if it also holds constants (a ``{system: loinc, code: {column: x}}``
coding vanishes when x is NULL), so the output never carries half-built elements.
"""

from __future__ import annotations

from typing import Any

from legacy_adapters.mapping.values import CompileContext, RowFn, compile_value, is_value_expression

_EMPTY = (None, [], {})


def compile_template(node: Any, ctx: CompileContext, where: str = "resource") -> RowFn:
    build, _ = _compile(node, ctx, where)
    return build


def _compile(node: Any, ctx: CompileContext, where: str) -> tuple[RowFn, bool]:
    """Returns the builder and whether the node is constant (has no data behind it)."""
    if is_value_expression(node):
        return compile_value(node, ctx, where), "const" in node
    if isinstance(node, dict):
        return _compile_object(node, ctx, where)
    if isinstance(node, list):
        return _compile_list(node, ctx, where)
    return (lambda row: node), True


def _compile_object(node: dict, ctx: CompileContext, where: str) -> tuple[RowFn, bool]:
    children = [(key, *_compile(value, ctx, f"{where}.{key}")) for key, value in node.items()]
    all_constant = all(constant for _, _, constant in children)

    def build(row: Any) -> dict | None:
        out = {}
        has_data = all_constant
        for key, child, constant in children:
            value = child(row)
            if value not in _EMPTY:
                out[key] = value
                has_data = has_data or not constant
        return out if has_data and out else None

    return build, all_constant


def _compile_list(node: list, ctx: CompileContext, where: str) -> tuple[RowFn, bool]:
    items = [_compile(item, ctx, f"{where}[{i}]") for i, item in enumerate(node)]

    def build(row: Any) -> list | None:
        out = []
        for child, _ in items:
            value = child(row)
            if value in _EMPTY:
                continue
            if isinstance(value, list):  # an item expanding to several (split_codings, hooks) is flattened
                out.extend(value)
            else:
                out.append(value)
        return out or None

    return build, all(constant for _, constant in items)
