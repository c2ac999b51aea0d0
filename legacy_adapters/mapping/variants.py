"""Variants: one legacy row → several resources, each the source seen through its variant.

``${name}`` is replaced by the variant's ``vars`` everywhere (``${variant}`` is its name), its
``resource`` and ``search`` are merged over the source's (a key set to null removes it), its
``where`` filters are added and its ``require`` columns listed. A variable the variant does not
define is an error at its place in the file. Marks survive: a substituted value keeps the mark
of where the variable was defined, so a misspelled column in ``vars`` is reported there.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from legacy_adapters.mapping.errors import Problems
from legacy_adapters.mapping.yamlpos import YDict, YList, located, mark_of

VAR = re.compile(r"\$\{(\w+)\}")


def expand_variant(source: dict, variant: dict, problems: Problems | None = None) -> dict:
    """The source as one of its variants sees it (one legacy row → several resources):
    ``${name}`` replaced by the variant's ``vars`` everywhere, its ``resource`` and ``search``
    merged over the source's (a key set to null removes it), its ``where`` filters added, and
    its ``require`` columns listed. The binder and ``mapping check`` both read variants this way.
    A variable the variant does not define is an error (added to ``problems`` when given)."""
    variables = {"variant": variant["name"], **(variant.get("vars") or {})}
    undefined = Problems()
    merged = copy.deepcopy({k: v for k, v in source.items() if k != "variants"})
    merged["resource"] = _merge(merged["resource"], copy.deepcopy(variant.get("resource")))
    merged["search"] = _merge(merged.get("search") or {}, copy.deepcopy(variant.get("search")))
    merged["where"] = [*(merged.get("where") or []), *(copy.deepcopy(variant.get("where")) or [])]
    merged = _substitute(merged, variables, undefined, f"variant {variant['name']!r}")
    merged["require"] = list(variant.get("require") or [])
    if problems is not None:
        problems.found.extend(p for p in undefined.found if p not in problems.found)
    else:
        undefined.raise_any()
    return merged


def _substitute(node: Any, variables: dict[str, Any], undefined: Problems, label: str) -> Any:
    """Replace ``${name}`` with the variant's variables, everywhere in a spec; marks are kept
    (a substituted value keeps the mark of where it was defined)."""
    if isinstance(node, str):
        for name in VAR.findall(node):
            if name not in variables:
                known = ", ".join(f"${{{v}}}" for v in variables)
                undefined.add(f"${{{name}}} is not defined by {label} (it defines {known})", mark_of(node))
        whole = VAR.fullmatch(node)
        if whole:  # keep the variable's own type (numbers, lists, None)
            return located(variables.get(whole.group(1), node), mark_of(node))
        return located(VAR.sub(lambda m: str(variables.get(m.group(1), m.group(0))), node), mark_of(node))
    if isinstance(node, dict):
        out = YDict({k: _substitute(v, variables, undefined, label) for k, v in node.items()})
        if isinstance(node, YDict):
            out.mark, out.key_marks, out.value_marks = node.mark, dict(node.key_marks), dict(node.value_marks)
        return out
    if isinstance(node, list):
        items = YList([_substitute(v, variables, undefined, label) for v in node])
        if isinstance(node, YList):
            items.mark, items.item_marks = node.mark, list(node.item_marks)
        return items
    return node


def _merge(base: dict, override: dict | None) -> dict:
    merged = YDict(base)
    if isinstance(base, YDict):
        merged.mark, merged.key_marks, merged.value_marks = base.mark, dict(base.key_marks), dict(base.value_marks)
    for key, value in (override or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
            if isinstance(override, YDict):
                merged.key_marks[key] = override.key_marks.get(key)  # type: ignore[assignment]
                merged.value_marks[key] = override.value_marks.get(key)  # type: ignore[assignment]
    return merged
