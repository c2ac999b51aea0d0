"""One resource in, its de-identified form out: the policy applied, walked with FHIR's own types.

``Deidentifier.resource`` works on any resource stream (a search page, ``$everything``, an
export): it needs only the resource, since the patient whose date offset applies is found
through the policy (``patient:``). Output depends on the resource, the policy, the key and the
reference year for ages, so the same request gives the same bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from facade.sandbox.keys import SandboxKey, SandboxKeyError
from facade.sandbox.policy import IDENTIFYING_TYPES, TEXT_TYPES, Policy, Rule
from legacy_adapters.mapping.fhirdefs import DATE_TYPES, PRIMITIVES, RESOURCE_TYPES, elements

REDACTED = "[redacted]"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MASKED = {"extension": [{"url": DATA_ABSENT, "valueCode": "masked"}]}
OLDEST_AGE = 89  # Safe Harbor: ages over 89 are one category (90 or older)
_KEEP_ALL = Rule("keep", "")
_MASK = object()  # a value replaced by a data-absent-reason 'masked' on its _element


class Deidentifier:
    def __init__(self, policy: Policy, key: SandboxKey, today: date | None = None):
        self.policy = policy
        self.key = key
        self.year = (today or date.today()).year

    def serves(self, resource_type: str) -> bool:
        return resource_type in self.policy.resources

    def pseudonym(self, resource_type: str, legacy_id: str) -> str:
        return self.key.pseudonym(resource_type, legacy_id)

    def patient_of(self, resource: Mapping) -> str | None:
        """The legacy id of the patient the resource is about (whose date offset applies)."""
        rules = self.policy.resources.get(resource.get("resourceType", ""))
        if rules is None or rules.patient is None:
            return None
        if rules.patient == "id":
            return resource.get("id")
        node: Any = resource
        for part in rules.patient.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        reference = node.get("reference") if isinstance(node, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            return reference[len("Patient/") :]
        return None

    def offset_days(self, resource: Mapping) -> int:
        """The date shift for this resource: its patient's, or (no patient) its own."""
        if self.policy.dates != "shift":
            return 0
        patient = self.patient_of(resource)
        subject = f"Patient/{patient}" if patient else f"{resource.get('resourceType')}/{resource.get('id')}"
        return self.key.offset_days(subject, self.policy.shift_days)

    def resource(self, resource: Mapping) -> dict | None:
        """The resource as the sandbox shows it, or None when the policy does not serve it."""
        resource_type = resource.get("resourceType", "")
        rules = self.policy.resources.get(resource_type)
        if rules is None or not isinstance(resource.get("id"), str):
            return None
        modifiers = resource.get("modifierExtension") or []
        if any(m.get("url") not in self.policy.extensions for m in modifiers if isinstance(m, dict)):
            return None  # a modifier we cannot judge changes the meaning of everything else
        try:
            pseudonym = self.pseudonym(resource_type, resource["id"])
        except SandboxKeyError:
            return None  # an id too long for a pseudonym: withheld rather than shown
        walk = _Walk(self, self.offset_days(resource))
        body = walk.object(resource, resource_type, rules.elements, skip=("resourceType", "id"))
        return {"resourceType": resource_type, "id": pseudonym, **body}


class _Walk:
    def __init__(self, deid: Deidentifier, offset: int):
        self.deid = deid
        self.policy = deid.policy
        self.offset = offset

    def object(
        self, node: Mapping, type_name: str, tree: Mapping[str, Rule] | None, *, skip: tuple[str, ...] = (), redact: bool = False
    ) -> dict:
        defs = elements(type_name) or {}
        out: dict = {}
        for key, value in node.items():
            if key in skip:
                continue
            name = key[1:] if key.startswith("_") else key
            rule = _KEEP_ALL if tree is None else tree.get(name)
            definition = defs.get(name)
            if rule is None or definition is None or rule.action == "remove":
                continue
            if key.startswith("_"):
                if name not in node:  # an element with only extensions (e.g. a data-absent-reason)
                    kept = self.companion(value)
                    if kept is not None:
                        out[key] = kept
                continue
            result = self.values(value, definition.type, definition.is_list, rule, redact)
            if result is _MASK:
                out["_" + key] = MASKED
            elif result is not None:
                out[key] = result
                kept = self.companion(node.get("_" + key))
                if kept is not None:
                    out["_" + key] = kept
        return out

    def values(self, value: Any, type_name: str, is_list: bool, rule: Rule, redact: bool) -> Any:
        if not is_list:
            return self.one(value, type_name, rule, redact)
        kept = [v for v in (self.one(item, type_name, rule, redact) for item in value or ()) if v is not None and v is not _MASK]
        return kept or None

    def one(self, value: Any, type_name: str, rule: Rule, redact: bool) -> Any:
        action = rule.action
        redact = redact or action == "redact"
        if action == "generalise":
            return self.address(value) if type_name == "Address" else self.birth(value, type_name)
        if type_name in PRIMITIVES:
            return self.primitive(value, type_name, redact)
        if type_name in IDENTIFYING_TYPES or not isinstance(value, dict):
            return None
        if type_name == "Reference":
            return self.reference(value)
        if type_name == "Extension":
            return self.extension(value)
        if type_name == "Resource":  # contained resources: served only as their own policy allows
            return self.deid.resource(value)
        return self.object(value, type_name, rule.children, redact=redact) or None

    def primitive(self, value: Any, type_name: str, redact: bool) -> Any:
        if type_name in DATE_TYPES and type_name != "time":
            return self.date(value, type_name)
        if redact and type_name in TEXT_TYPES:
            return REDACTED
        return value

    def date(self, value: Any, type_name: str) -> str | None:
        if not isinstance(value, str) or len(value) < 4:
            return None
        if self.policy.dates == "year":
            return None if type_name == "instant" else value[:4]
        if len(value) < 10:
            return None  # a partial date cannot be shifted by days without inventing a day
        try:
            shifted = date.fromisoformat(value[:10]) + timedelta(days=self.offset)
        except (ValueError, OverflowError):
            return None
        return shifted.isoformat() + value[10:]

    def birth(self, value: Any, type_name: str) -> Any:
        """A date generalised: the year (after shifting, when dates shift), and masked when it
        would show an age over 89."""
        if not isinstance(value, str) or len(value) < 4 or not value[:4].isdigit():
            return None
        if self.deid.year - int(value[:4]) > OLDEST_AGE:
            return _MASK
        shown = self.date(value, type_name)
        return shown[:4] if shown else None

    def address(self, value: Any) -> dict | None:
        if not isinstance(value, dict):
            return None
        out = {key: value[key] for key in ("use", "type", "state", "country") if isinstance(value.get(key), str)}
        digits = "".join(ch for ch in str(value.get("postalCode", "")) if ch.isdigit())
        if len(digits) >= 5:
            out["postalCode"] = "000" if digits[:3] in self.policy.restricted_zip3 else digits[:3]
        return out or None

    def reference(self, value: Mapping) -> dict | None:
        out: dict = {}
        target = value.get("reference")
        if isinstance(target, str):
            resource_type, _, legacy_id = target.partition("/")
            if target.startswith("#"):
                out["reference"] = target
            elif resource_type in RESOURCE_TYPES and legacy_id and "/" not in legacy_id and self.deid.serves(resource_type):
                with contextlib.suppress(SandboxKeyError):  # its target is withheld too
                    out["reference"] = f"{resource_type}/{self.deid.pseudonym(resource_type, legacy_id)}"
        if out and isinstance(value.get("type"), str):
            out["type"] = value["type"]
        return out or None  # display and identifier never leave: they name what the id hides

    def extension(self, value: Mapping) -> dict | None:
        if value.get("url") not in self.policy.extensions:
            return None
        return self.object(value, "Extension", None) or None

    def companion(self, value: Any) -> Any:
        """``_element``: only its allowed extensions."""
        if isinstance(value, list):
            kept = [self.companion(v) if v is not None else None for v in value]
            return kept if any(v is not None for v in kept) else None
        if not isinstance(value, dict):
            return None
        extensions = [e for e in (self.extension(x) for x in value.get("extension", ()) if isinstance(x, dict)) if e]
        return {"extension": extensions} if extensions else None
