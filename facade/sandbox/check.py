"""Residual identifiers in the sandbox's output: the evidence a privacy officer asks for.

Walks every type the sandbox serves, page by page, in step with the identified API's answer for
the same rows (the legacy values as the mapping reads them), and reports per element what it
finds in the sandbox's resources:

- **legacy id**: a resource id or reference that is a legacy id, not a pseudonym;
- **name**: a word of any person's name (HumanName anywhere: patients, practitioners…);
- **identifier**: an Identifier value (MRNs, NPIs, accession numbers…);
- **telecom**: a phone number (its digits, however written) or an e-mail address;
- **street**: a street line or a city of any address;
- **full date**: a date at the same element still equal to the legacy's (day precision);
- **free text**: a free-text value (notes, ``*String`` values, dosage text, reference displays)
  still equal to, or containing, the legacy's at the same element.

One statement per page on each side; identifiers are collected from the types that hold them
(Patient and Practitioner first), so every page is checked against everyone's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from facade.access.grant import Access
from facade.core.service import FhirService
from facade.sandbox.deid import REDACTED
from facade.sandbox.keys import SandboxKeyError
from facade.sandbox.service import SandboxService
from facade.search.params import STORAGE_ORDER
from facade.search.request import SearchRequest
from legacy_adapters.mapping.fhirdefs import DATE_TYPES, elements

FIRST = ("Patient", "Practitioner", "RelatedPerson", "Person", "Organization", "Location")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_TOKEN = re.compile(r"[A-Za-z0-9@._\-]+")
# Free text: (type holding it, element); a choice's *String value anywhere.
FREE_TEXT = {("Annotation", "text"), ("Narrative", "div"), ("Reference", "display"), ("Dosage", "text"), ("Dosage", "patientInstruction")}
URI_TYPES = frozenset({"uri", "url", "canonical"})  # code systems and profiles: the same for everyone
MIN_NAME = 3  # shorter name parts ("Li", "Bo") would match ordinary words


@dataclass
class Identifiers:
    """What would identify someone, as the identified API shows it."""

    names: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    streets: dict[str, set[str]] = field(default_factory=dict)  # first word → normalised lines and cities
    legacy_ids: set[str] = field(default_factory=set)
    _seen: dict[str, tuple[str, ...]] = field(default_factory=dict)  # text → kinds found in it (texts repeat)

    def kinds(self, text: str) -> tuple[str, ...]:
        """The kinds of identifier in ``text`` (remembered: identifiers are collected before they
        are looked for, type by type, so an answer stays true for the rest of the walk's type)."""
        found = self._seen.get(text)
        if found is None:
            found = self._seen[text] = tuple(kind for kind, hit in self._look(text) if hit)
        return found

    def _look(self, text: str) -> Iterator[tuple[str, bool]]:
        yield "name", any(w.lower() in self.names for w in _WORD.findall(text))
        tokens = {t.lower().strip("._-") for t in _TOKEN.findall(text)}
        yield "identifier", bool(tokens & self.identifiers)
        digits = "".join(filter(str.isdigit, text))
        phone = len(digits) >= 7 and any(digits[i : i + 7] in self.phones for i in range(len(digits) - 6))
        yield "telecom", phone or bool(tokens & self.emails)
        words = _normal(text).split()
        yield (
            "street",
            any(
                " ".join(words[i:j]) in self.streets.get(words[i], ())
                for i in range(len(words))
                for j in range(i + 1, min(len(words), i + 8) + 1)
            ),
        )

    def collect(self, node: Any, type_name: str) -> None:
        for value, value_type in _typed(node, type_name):
            if value_type == "HumanName":
                for part in [value.get("family"), *(value.get("given") or ()), value.get("text")]:
                    self.names.update(w.lower() for w in _WORD.findall(part or "") if len(w) >= MIN_NAME)
            elif value_type == "Identifier" and isinstance(value.get("value"), str) and len(value["value"]) >= 4:
                self.identifiers.add(value["value"].lower())
            elif value_type == "ContactPoint" and isinstance(value.get("value"), str):
                text = value["value"]
                digits = re.sub(r"\D", "", text)
                if "@" in text:
                    self.emails.add(text.lower())
                elif len(digits) >= 7:
                    self.phones.add(digits[-7:])
            elif value_type == "Address":
                for line in [*(value.get("line") or ()), value.get("city")]:
                    if isinstance(line, str) and len(line) >= 4 and _normal(line):
                        normal = _normal(line)
                        self.streets.setdefault(normal.split()[0], set()).add(normal)


@dataclass(frozen=True)
class Finding:
    element: str  # Type.path (no list indices)
    kind: str
    count: int


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    resources: int  # sandbox resources checked


def _report(found: Counter[tuple[str, str]], resources: int) -> Report:
    return Report([Finding(element, kind, count) for (element, kind), count in sorted(found.items())], resources)


def check(identified: FhirService, sandbox: SandboxService, *, limit: int | None = None, page_size: int = 500) -> Report:
    """Findings over every type the sandbox serves (at most ``limit`` resources of each)."""
    known = Identifiers()
    found: Counter[tuple[str, str]] = Counter()
    resources = 0
    types = sorted(sandbox.types, key=lambda t: (FIRST.index(t) if t in FIRST else len(FIRST), t))
    for resource_type in types:
        known._seen.clear()  # this type's identifiers are collected as it is walked
        for legacy, shown in _pairs(identified, sandbox, resource_type, limit, page_size):
            known.legacy_ids.add(legacy["id"])
            known.collect(legacy, resource_type)
            resources += 1
            for element, kind in _residuals(legacy, shown, resource_type, known):
                found[(element, kind)] += 1
    return _report(found, resources)


def check_everything(identified: FhirService, sandbox: SandboxService, *, limit: int | None = None, page_size: int = 500) -> Report:
    """Findings in ``Patient/$everything`` of every patient (at most ``limit`` patients): each
    resource of the sandbox's answer beside the identified answer's."""
    known = Identifiers()
    for resource_type in (t for t in FIRST if t in sandbox.types):  # everyone's identifiers, before looking
        for legacy, _ in _pairs(identified, sandbox, resource_type, None, page_size):
            known.legacy_ids.add(legacy["id"])
            known.collect(legacy, resource_type)
    found: Counter[tuple[str, str]] = Counter()
    resources = 0
    for patient, _ in _pairs(identified, sandbox, "Patient", limit, page_size):
        answer = _everything(identified, patient["id"], page_size)
        known.legacy_ids.update(r["id"] for r in answer)
        by_pseudonym = {f"{r['resourceType']}/{sandbox.deid.pseudonym(r['resourceType'], r['id'])}": r for r in answer}
        pseudonym = sandbox.deid.pseudonym("Patient", patient["id"])
        for shown in _everything(sandbox, pseudonym, page_size):
            resources += 1
            original = by_pseudonym.get(f"{shown['resourceType']}/{shown['id']}")
            if original is None:
                found[(shown["resourceType"], "not in the identified answer")] += 1
                continue
            for element, kind in _residuals(original, shown, shown["resourceType"], known):
                found[(element, kind)] += 1
    return _report(found, resources)


def check_export(identified: FhirService, sandbox: SandboxService, shown: Mapping[str, Iterable[dict]], *, page_size: int = 500) -> Report:
    """Findings in resources the sandbox wrote out (an export's files: type → resources in file
    order, which is the rows' storage order), each beside the identified
    answer for its row; a resource with no such row is a finding too."""
    known = Identifiers()
    found: Counter[tuple[str, str]] = Counter()
    resources = 0
    everyone = Access.unrestricted()
    for resource_type in sorted(shown, key=lambda t: (FIRST.index(t) if t in FIRST else len(FIRST), t)):
        known._seen.clear()
        legacy = _rows(identified, resource_type, everyone, page_size)
        for resource in shown[resource_type]:
            resources += 1
            for original in legacy:  # rows the export withheld are passed over
                known.legacy_ids.add(original["id"])
                known.collect(original, resource_type)
                if _pseudonym(sandbox, resource_type, original["id"]) == resource.get("id"):
                    break
            else:
                found[(resource_type, "not in the identified answer")] += 1
                continue
            for element, kind in _residuals(original, resource, resource_type, known):
                found[(element, kind)] += 1
        for original in legacy:  # everyone's identifiers, for the types checked next
            known.legacy_ids.add(original["id"])
            known.collect(original, resource_type)
    return _report(found, resources)


def _pseudonym(sandbox: SandboxService, resource_type: str, legacy_id: str) -> str | None:
    try:
        return sandbox.deid.pseudonym(resource_type, legacy_id)
    except SandboxKeyError:  # an id too long for a pseudonym: the sandbox withholds its row
        return None


def _rows(service: FhirService, resource_type: str, access: Access, page_size: int) -> Iterator[dict]:
    """The identified resources of a type in the order an export writes them (storage order)."""
    request = access.narrow(SearchRequest(resource_type, sort=(STORAGE_ORDER,), count=page_size), "search")
    cursor = None
    while True:
        rows: list[dict] = []
        page = service.query_narrowed(replace(request, cursor=cursor), rows.append)
        yield from rows
        cursor = page.next_cursor
        if cursor is None:
            return


def _everything(service: FhirService | SandboxService, patient: str, page_size: int) -> list[dict]:
    resources, cursor = [], None
    while True:
        bundle = service.everything(patient, _params(page_size, cursor), "", Access.unrestricted(), strict=True).body
        resources += [e["resource"] for e in bundle.get("entry", ()) if e["search"]["mode"] != "outcome"]
        cursor = _next(bundle)
        if cursor is None:
            return resources


def _pairs(
    identified: FhirService, sandbox: SandboxService, resource_type: str, limit: int | None, page_size: int
) -> Iterator[tuple[dict, dict]]:
    """(identified, sandbox) resources for the same rows, page by page in step (both ordered by the legacy id)."""
    everyone = Access.unrestricted()
    count = min(page_size, limit) if limit else page_size
    legacy_cursor = shown_cursor = None
    seen = 0
    while True:
        legacy_page = identified.search(resource_type, _params(count, legacy_cursor), "", everyone).body
        shown_page = sandbox.search(resource_type, _params(count, shown_cursor), "", everyone, strict=True).body
        shown = {e["resource"]["id"]: e["resource"] for e in shown_page.get("entry", ()) if e["search"]["mode"] == "match"}
        for entry in legacy_page.get("entry", ()):
            if entry["search"]["mode"] != "match":
                continue
            legacy = entry["resource"]
            counterpart = shown.get(sandbox.deid.pseudonym(resource_type, legacy["id"]))
            if counterpart is not None:
                yield legacy, counterpart
            seen += 1
            if limit and seen >= limit:
                return
        legacy_cursor, shown_cursor = _next(legacy_page), _next(shown_page)
        if legacy_cursor is None:
            return


def _params(count: int, cursor: str | None) -> list[tuple[str, str]]:
    return [("_count", str(count))] + ([("_cursor", cursor)] if cursor else [])


def _next(bundle: Mapping) -> str | None:
    for link in bundle.get("link", ()):
        if link["relation"] == "next":
            return dict(parse_qsl(urlsplit(link["url"]).query)).get("_cursor")
    return None


def _residuals(legacy: dict, shown: dict, resource_type: str, known: Identifiers) -> Iterator[tuple[str, str]]:
    legacy_leaves = dict(_leaves(legacy, resource_type, ""))
    for path, (value, value_type, holder) in _leaves(shown, resource_type, ""):
        element = resource_type + "." + re.sub(r"\[\d+\]", "", path)
        if path == "id" or path.endswith(".reference"):
            target = value.rpartition("/")[2]
            if target in known.legacy_ids:
                yield element, "legacy id"
            continue
        original = legacy_leaves.get(path, (None, None))[0]
        if value_type in DATE_TYPES:
            if isinstance(original, str) and len(value) >= 10 and len(original) >= 10 and value[:10] == original[:10]:
                yield element, "full date"
            continue
        if not isinstance(value, str) or value == REDACTED or value_type in URI_TYPES:
            continue
        lowered = value.lower()
        key = path.rpartition(".")[2].partition("[")[0]
        free = (holder, key) in FREE_TEXT or (key.endswith("String") and key != "String")
        if free and isinstance(original, str) and len(original) >= 4 and original.lower() in lowered:
            yield element, "free text"
        for kind in known.kinds(value):
            yield element, kind


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _leaves(node: Any, type_name: str, path: str) -> Iterator[tuple[str, tuple[Any, str, str]]]:
    """(path with list indices, (primitive value, its FHIR type, the type holding it)) for every
    primitive in ``node``."""
    defs = elements(type_name) or {}
    for key, value in node.items() if isinstance(node, dict) else ():
        definition = defs.get(key)
        child_type = definition.type if definition is not None else ("Resource" if key == "resource" else "string")
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{path}.{key}" if path else key
            if isinstance(value, list):
                where += f"[{index}]"
            if isinstance(item, dict):
                yield from _leaves(item, item.get("resourceType", child_type) if child_type == "Resource" else child_type, where)
            elif item is not None:
                yield where, (item, child_type, type_name)


def _typed(node: Any, type_name: str) -> Iterator[tuple[dict, str]]:
    """Every complex value in ``node`` with its FHIR type."""
    defs = elements(type_name) or {}
    for key, value in node.items() if isinstance(node, dict) else ():
        definition = defs.get(key)
        if definition is None or definition.primitive:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                yield item, definition.type
                yield from _typed(item, definition.type)
