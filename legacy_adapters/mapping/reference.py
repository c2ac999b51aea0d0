"""docs/mapping/reference.md, written from the format's schema (``fhir-facade mapping reference``),
so the reference says exactly what the engine and the editors check."""

from __future__ import annotations

from typing import Any

from legacy_adapters.mapping.format import SCHEMA

_ORDER = ["", "resource", "parameter", "source", "join", "collection", "filter", "variant", "value", "binding", "code_table"]
_HEADINGS = {"": "The mapping file"}


def reference_markdown() -> str:
    lines = [
        "# Mapping format reference",
        "",
        "<!-- Written by `fhir-facade mapping reference --out docs/mapping/reference.md` from",
        "     legacy_adapters/mapping/format.py; a test keeps it current. Edit the schema, not this page. -->",
        "",
        "Every key a mapping file may use, where it may use it, and what it means. The same definition is",
        "published as a JSON Schema (`legacy_adapters/mapping/mapping.schema.json`, or `fhir-facade mapping",
        "schema`) for editors, and the engine checks every mapping against it when it loads: an unknown key is",
        "an error at its line. Resource templates (`resource:`) are FHIR-shaped and checked against FHIR R4",
        "instead (see [writing a mapping](writing.md)).",
        "",
    ]
    for name in _ORDER:
        definition = SCHEMA if name == "" else SCHEMA["$defs"][name]
        title = _HEADINGS.get(name) or definition.get("title", name).capitalize()
        lines += [f"## {title}", "", definition["description"], ""]
        lines += _table(definition)
    return "\n".join(lines).rstrip() + "\n"


def _table(definition: dict) -> list[str]:
    properties = definition.get("properties", {})
    if not properties:
        return []
    required = set(definition.get("required", []))
    lines = ["| key | value | meaning |", "|---|---|---|"]
    for key, schema in properties.items():
        mark = " (required)" if key in required else ""
        lines.append(f"| `{key}`{mark} | {_type(schema)} | {_one_line(schema.get('description', ''))} |")
    if "patternProperties" in definition:
        lines.append("| `x-…` | anything | " + _one_line(next(iter(definition["patternProperties"].values()))["description"]) + " |")
    if "anyOf" in definition and all(set(b) == {"required"} for b in definition["anyOf"]):
        keys = ", ".join(f"`{b['required'][0]}`" for b in definition["anyOf"])
        lines.append(f"| | | One of {keys} is needed. |")
    return [*lines, ""]


def _type(schema: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rpartition("/")[2]
        return f"[{SCHEMA['$defs'][name].get('title', name)}](#{_anchor(SCHEMA['$defs'][name].get('title', name))})"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kinds = schema.get("type")
    names = [kinds] if isinstance(kinds, str) else list(kinds or ["any"])
    words = {"object": "mapping", "array": "list", "string": "text", "number": "number", "boolean": "true/false", "integer": "integer"}
    text = " or ".join(words.get(n, n) for n in names)
    for inner in ("items", "additionalProperties"):
        if isinstance(schema.get(inner), dict) and "$ref" in schema[inner]:
            text += f" of {_type(schema[inner])}"
    return text


def _one_line(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")
