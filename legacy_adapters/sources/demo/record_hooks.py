"""Hooks for the demo's later tables: note text, plan narrative, care team rows, names.

Each receives the listed column values (trimmed; None when absent) and returns JSON data,
or None to leave the element out.
"""

from __future__ import annotations

import html

from legacy_adapters.sources.documents import base64_text, v2_unescape
from legacy_adapters.sources.hooklib import profile_if  # noqa: F401  (a hook of this mapping)

SNOMED = "http://snomed.info/sct"
XHTML = "http://www.w3.org/1999/xhtml"


def unknown_unless_code(code: str | None) -> str | None:
    """'UNK' (v3 NullFlavor) for a coded element whose standard code the legacy lacks."""
    return None if code else "UNK"


def note_data(encoding: str | None, body: str | None) -> str | None:
    """A note body in the note store's encoding → base64 of its UTF-8 plain text."""
    return base64_text(v2_unescape(body) if body and encoding == "V2E" else body)


def _plan_lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").split("~") if line.strip()]


def plan_narrative(text: str | None) -> str | None:
    """A care plan's free text ('~' between lines) → the XHTML narrative, one paragraph a line."""
    lines = _plan_lines(text)
    if not lines:
        return None
    body = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)
    return f'<div xmlns="{XHTML}">{body}</div>'


def plan_description(text: str | None) -> str | None:
    return "\n".join(_plan_lines(text)) or None


def team_member(member: str | None, role: str, display: str, by_name: bool = False) -> dict | None:
    """One column of the wide care team row → a participant (none when the column is empty)."""
    if not member:
        return None
    who = {"display": member} if by_name else {"reference": f"Practitioner/{member}"}
    return {"role": [{"coding": [{"system": SNOMED, "code": role, "display": display}]}], "member": who}


def comma_name(text: str | None) -> dict | None:
    """'LAST,FIRST' as registration typed it → a HumanName."""
    if not text:
        return None
    family, _, given = (part.strip() for part in text.partition(","))
    name: dict = {"text": " ".join(p for p in (given, family) if p).title()}
    if family:
        name["family"] = family.title()
    if given:
        name["given"] = [g.title() for g in given.split()]
    return name
