"""Legacy text behind documents and devices, for mapping hooks of any source: HL7 v2 escaped note
text, plain text as a base64 attachment, and GS1 UDI strings as scanned."""

from __future__ import annotations

import base64
import re
from datetime import datetime

_V2_ESCAPES = {"T": "&", "F": "|", "S": "^", "R": "~", "E": "\\", ".br": "\n"}
_GS1 = re.compile(r"\((\d{2,4})\)([^(]*)")


def v2_unescape(text: str) -> str:
    """Text with HL7 v2 escape sequences (\\T\\ for '&', \\.br\\ for a line break…) → plain text;
    an unknown sequence is kept as written."""
    return re.sub(r"\\(\.br|[TFSRE])\\", lambda m: _V2_ESCAPES[m.group(1)], text)


def base64_text(text: str | None) -> str | None:
    """Plain text → base64 of its UTF-8 bytes (Attachment.data); None for no text."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii") if text else None


def udi_parts(text: str | None) -> dict[str, str]:
    """GS1 human-readable UDI '(01)…(17)…(10)…(21)…' → its application identifiers."""
    return {ai: value.strip() for ai, value in _GS1.findall(text or "")}


def udi_carrier(text: str | None) -> dict | None:
    """The UDI as scanned → Device.udiCarrier: the device identifier (AI 01) and the string itself."""
    parts = udi_parts(text)
    if "01" not in parts:
        return None
    return {"deviceIdentifier": parts["01"], "issuer": "http://hl7.org/fhir/NamingSystem/gs1-di", "carrierHRF": text}


def udi_field(text: str | None, ai: str) -> str | None:
    return udi_parts(text).get(ai) or None


def udi_date(text: str | None, ai: str) -> str | None:
    """A GS1 YYMMDD date; day 00 (the day not given) gives the month."""
    value = udi_parts(text).get(ai, "")
    if not re.fullmatch(r"\d{6}", value):
        return None
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:])
    try:
        return datetime(year, month, day).strftime("%Y-%m-%d") if day else datetime(year, month, 1).strftime("%Y-%m")
    except ValueError:
        return None
