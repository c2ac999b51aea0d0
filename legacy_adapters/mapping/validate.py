"""Checking a mapping document against the format's JSON Schema (:mod:`format`), with messages
a vendor can act on: where (``file:line:column``), what was found, what was expected, and the
nearest known key for a misspelled one.

Only the part of JSON Schema the format uses is read: ``$ref``, ``type``, ``enum``,
``properties``, ``patternProperties``, ``additionalProperties``, ``required``, ``anyOf`` (of
required keys, or of schemas), ``items``, ``minItems`` and ``minProperties``.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from legacy_adapters.mapping.errors import Problems
from legacy_adapters.mapping.format import SCHEMA
from legacy_adapters.mapping.yamlpos import key_mark, mark_of

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def suggest(word: str, known: Any) -> str:
    """``"; did you mean 'x'?"`` for the closest known word, or nothing."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    if not close:
        lowered = {str(k).lower(): str(k) for k in known}
        close = [lowered[str(word).lower()]] if str(word).lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""


def definition(name: str) -> dict:
    return SCHEMA["$defs"][name]


def check_document(document: Any, problems: Problems) -> None:
    check(document, SCHEMA, "", problems)


def check(node: Any, schema: dict, path: str, problems: Problems, parent: Any = None, key: Any = None) -> bool:
    """Check ``node`` (``parent[key]``) against ``schema``; add a problem for each mismatch.
    True when the node has the expected shape (its children may still have problems)."""
    schema = _resolve(schema)
    mark = mark_of(parent, key) if parent is not None else mark_of(node)
    if isinstance(node, str) and "${" in node and schema.get("type") not in (None, "string"):
        return True  # a variant's variable: checked once substituted
    types = schema.get("type")
    if types is not None and not _is(node, types):
        problems.add(f"expected {_describe(schema)}, found {_kind(node)}", mark, path)
        return False
    if "enum" in schema and node not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        problems.add(f"{_kind(node)} is not allowed; expected one of: {allowed}{suggest(node, schema['enum'])}", mark, path)
        return False
    if isinstance(node, dict):
        _check_object(node, schema, path, problems)
    elif isinstance(node, list):
        items = schema.get("items")
        if len(node) < schema.get("minItems", 0):
            problems.add(f"needs at least {schema['minItems']} item(s)", mark, path)
        if items is not None:
            for i, item in enumerate(node):
                check(item, items, f"{path}[{i}]", problems, node, i)
    return "anyOf" not in schema or _any_of(node, schema, path, problems, mark)


def _check_object(node: dict, schema: dict, path: str, problems: Problems) -> None:
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    additional = schema.get("additionalProperties", True)
    what = schema.get("title", "this mapping")
    for name, child in node.items():
        child_path = f"{path}.{name}" if path else str(name)
        if name in properties:
            check(child, properties[name], child_path, problems, node, name)
            continue
        pattern = next((p for p in patterns if isinstance(name, str) and re.search(p, name)), None)
        if pattern is not None:
            check(child, patterns[pattern], child_path, problems, node, name)
        elif additional is False:
            expected = ", ".join(properties)
            hint = _comma_hint(name, child, getattr(node, "flow", False))
            problems.add(
                f"unknown key '{name}' in {what}{suggest(name, properties)} (expected: {expected}){hint}", key_mark(node, name), path
            )
        elif isinstance(additional, dict):
            check(child, additional, child_path, problems, node, name)
    for name in schema.get("required", []):
        if name not in node:
            about = _resolve(properties.get(name, {})).get("description", "").rstrip(".")
            about = f" ({about[:1].lower()}{about[1:]})" if about else ""
            problems.add(f"{what} needs '{name}'{about}", mark_of(node), path)
    if len(node) < schema.get("minProperties", 0):
        problems.add(
            f"{what} needs at least {schema['minProperties']} entr{'y' if schema['minProperties'] == 1 else 'ies'}", mark_of(node), path
        )


def _any_of(node: Any, schema: dict, path: str, problems: Problems, mark: Any) -> bool:
    branches = schema["anyOf"]
    if all(set(branch) == {"required"} for branch in branches):
        if not isinstance(node, dict):
            return True
        if any(all(k in node for k in branch["required"]) for branch in branches):
            return True
        keys = [branch["required"][0] for branch in branches]
        problems.add(f"{schema.get('title', 'this')} needs one of: {', '.join(keys)}", mark, path)
        return False
    trial = [Problems() for _ in branches]
    if any(check(node, branch, path, found) and not found for branch, found in zip(branches, trial)):
        return True
    best = min(trial, key=lambda found: len(found.found))
    for problem in best.found:
        problems.add(problem.message, problem.mark, problem.where)
    return False


def _comma_hint(name: Any, value: Any, flow: bool) -> str:
    """A key with no value inside ``{…}`` is usually text cut at a comma."""
    if value is None and isinstance(name, str) and (flow or " " in name.strip()):
        return "; inside {…} a comma starts a new key: put text holding commas in quotes"
    return ""


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**definition(schema["$ref"].rpartition("/")[2]), **extra}
    return schema


def _is(node: Any, types: str | list[str]) -> bool:
    for name in [types] if isinstance(types, str) else types:
        if name == "number" and isinstance(node, (int, float)) and not isinstance(node, bool):
            return True
        if name == "integer" and isinstance(node, int) and not isinstance(node, bool):
            return True
        if name in _TYPES and isinstance(node, _TYPES[name]):
            return True
    return False


def _describe(schema: dict) -> str:
    if "title" in schema:
        return f"{schema['title']} (a mapping)" if schema.get("type") == "object" else schema["title"]
    types = schema.get("type")
    names = [types] if isinstance(types, str) else list(types or [])
    words = {"object": "a mapping", "array": "a list", "string": "text", "number": "a number", "integer": "an integer"}
    return " or ".join(words.get(n, f"a {n}") for n in names)


def _kind(node: Any) -> str:
    if isinstance(node, dict):
        return "a mapping {…}"
    if isinstance(node, list):
        return "a list […]"
    if node is None:
        return "null (nothing)"
    if isinstance(node, bool):
        return f"the boolean {str(node).lower()}"
    if isinstance(node, (int, float)):
        return f"the number {node}"
    return f"'{node}'"
