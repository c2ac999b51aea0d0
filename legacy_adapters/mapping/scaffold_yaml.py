"""Writing a drafted mapping as YAML a person edits: block style for structure, one-line flow style
for small leaves (as the shipped mappings are written), and comments (keys starting with ``#``)."""

from __future__ import annotations

from typing import Any

import yaml

_WIDTH = 110


def emit(document: dict) -> str:
    from pathlib import Path

    schema = Path(__file__).resolve().parent / "mapping.schema.json"  # the installed copy: editors check the draft against it
    lines = [f"# yaml-language-server: $schema={schema.as_uri()}"]
    lines += _mapping(document, 0)
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True, sort_keys=False).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _leaf(value: Any) -> bool:
    if isinstance(value, (dict, list)):
        return len(_flow(value)) <= _WIDTH and all(not isinstance(v, (dict, list)) or _leaf(v) for v in _children(value))
    return True


def _children(value: Any) -> list:
    return list(value.values()) if isinstance(value, dict) else list(value)


def _mapping(node: dict, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("#"):
            lines.append(f"{pad}# {value}" if key.strip() != "#" or indent else f"# {value}")
            continue
        name = _flow(key)
        if _leaf(value) and not (isinstance(value, dict) and any(str(k).startswith("#") for k in value)):
            lines.append(f"{pad}{name}: {_flow(value)}")
        elif isinstance(value, dict):
            lines.append(f"{pad}{name}:")
            lines += _mapping(value, indent + 2)
        else:
            lines.append(f"{pad}{name}:")
            lines += _sequence(value, indent + 2)
    return lines


def _sequence(items: list, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in items:
        if _leaf(item) and not (isinstance(item, dict) and any(str(k).startswith("#") for k in item)):
            lines.append(f"{pad}- {_flow(item)}")
        elif isinstance(item, dict):
            inner = _mapping(item, indent + 2)
            first = next(i for i, line in enumerate(inner) if not line.strip().startswith("#"))
            inner[first] = f"{pad}- {inner[first][indent + 2 :]}"
            lines += inner
        else:
            lines.append(f"{pad}-")
            lines += _sequence(item, indent + 2)
    return lines
