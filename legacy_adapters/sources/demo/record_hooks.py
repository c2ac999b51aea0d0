"""Hooks for the demo's later tables: note text, plan narrative, care team rows, UDIs, names.

Each receives the listed column values (trimmed; None when absent) and returns JSON data,
or None to leave the element out.
"""

from __future__ import annotations

import base64
import html
import re
from datetime import datetime

SNOMED = "http://snomed.info/sct"
_V2_ESCAPES = {"T": "&", "F": "|", "S": "^", "R": "~", "E": "\\", ".br": "\n"}


def v2_unescape(text: str) -> str:
    """Text with HL7 v2 escape sequences (\\T\\ for '&', \\.br\\ for a line break…) → plain text;
    an unknown sequence is kept as written."""
    return re.sub(r"\\(\.br|[TFSRE])\\", lambda m: _V2_ESCAPES[m.group(1)], text)


XHTML = "http://www.w3.org/1999/xhtml"


def profile_if(value: object, url: str) -> str | None:
    """A profile claimed only when the column a profile requires has a value."""
    return url if value not in (None, "") else None


def unknown_unless_code(code: str | None) -> str | None:
    """'UNK' (v3 NullFlavor) for a coded element whose standard code the legacy lacks."""
    return None if code else "UNK"


def note_data(encoding: str | None, body: str | None) -> str | None:
    """A note body in the note store's encoding → base64 of its UTF-8 plain text."""
    if not body:
        return None
    text = v2_unescape(body) if encoding == "V2E" else body
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


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


_GS1 = re.compile(r"\((\d{2,4})\)([^(]*)")


def _udi(text: str | None) -> dict[str, str]:
    """GS1 human-readable UDI '(01)…(17)…(10)…(21)…' → its application identifiers."""
    return {ai: value.strip() for ai, value in _GS1.findall(text or "")}


def udi_carrier(text: str | None) -> dict | None:
    """The UDI as scanned → udiCarrier: the device identifier (AI 01) and the string itself."""
    parts = _udi(text)
    if "01" not in parts:
        return None
    return {"deviceIdentifier": parts["01"], "issuer": "http://hl7.org/fhir/NamingSystem/gs1-di", "carrierHRF": text}


def udi_field(text: str | None, ai: str) -> str | None:
    return _udi(text).get(ai) or None


def udi_date(text: str | None, ai: str) -> str | None:
    """A GS1 YYMMDD date (day 00: the end of the month is not given, so the month)."""
    value = _udi(text).get(ai, "")
    if not re.fullmatch(r"\d{6}", value):
        return None
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:])
    try:
        return datetime(year, month, day).strftime("%Y-%m-%d") if day else datetime(year, month, 1).strftime("%Y-%m")
    except ValueError:
        return None


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
