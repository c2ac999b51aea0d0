"""Splitting search values on ',' and '|' with backslash escapes (R4 search §3.1.1.4.16).

Splitting keeps escapes in the parts so a later split level still sees them;
:func:`unescape` is applied once, to the final leaf value.
"""

from __future__ import annotations

_ESCAPABLE = (",", "|", "$", "\\")


def split_escaped(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = 0
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2
            continue
        if ch == separator:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in _ESCAPABLE:
            out.append(value[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
