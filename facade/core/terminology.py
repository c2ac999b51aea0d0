"""FHIR terminology resources and operations, built from the crosswalk snapshot and legacy code tables.

- ConceptMap: one per crosswalk (file or code table); ``$translate`` both ways.
- CodeSystem: one per local code system; ``content: complete`` when a legacy code table holds
  it, ``fragment`` when only a crosswalk file knows its codes; ``$lookup``.
- ValueSet: one per legacy code table ("all codes of the table"); ``$expand``.

Answers are plain dicts (FHIR JSON); each call takes one snapshot and uses only it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from facade.errors import InvalidRequest, NotFound
from legacy_adapters.code_tables import LegacyCodeTables
from terminology.model import Crosswalk
from terminology.registry import Terminology

VALUESET_URL = "urn:fhir-facade:valueset:"
_NOT_A_MATCH = ("unmatched", "disjoint")
_COMMENTS = {
    "narrower": "The standard code is narrower than the local code, so it is not applied to legacy data.",
    "inexact": "The meanings overlap only partly, so the standard code is not applied to legacy data.",
}


class TerminologyService:
    def __init__(self, terminology: Terminology, code_tables: LegacyCodeTables):
        self.terminology = terminology
        self.code_tables = code_tables

    # -- ConceptMap -------------------------------------------------------
    def crosswalks(self) -> dict[str, Crosswalk]:
        snapshot = self.terminology.current()
        found = dict(snapshot.crosswalks)
        for name in self.code_tables.specs:
            crosswalk = self.code_tables.crosswalk(name, snapshot.version)
            if crosswalk is not None:
                found[name] = crosswalk
        return found

    def concept_map(self, map_id: str) -> dict:
        crosswalk = self.crosswalks().get(map_id)
        if crosswalk is None:
            raise NotFound(f"ConceptMap/{map_id} is not known")
        return concept_map(crosswalk, self._publisher())

    def search_concept_maps(self, params: dict[str, str]) -> list[dict]:
        wanted = {k: v for k, v in params.items() if k in ("url", "source", "target", "source-system", "target-system", "_id")}
        found = []
        for name, crosswalk in sorted(self.crosswalks().items()):
            resource = concept_map(crosswalk, self._publisher())
            sources = {crosswalk.local_system, resource.get("sourceCanonical")}
            targets = set(crosswalk.target_systems)
            if ("_id" in wanted and wanted["_id"] != name) or ("url" in wanted and wanted["url"] != crosswalk.url):
                continue
            if any(wanted[k] not in sources for k in ("source", "source-system") if k in wanted):
                continue
            if any(wanted[k] not in targets for k in ("target", "target-system") if k in wanted):
                continue
            found.append(resource)
        return found

    def translate(self, args: dict[str, Any], map_id: str | None = None) -> dict:
        coding = args.get("coding") or {}
        system, code = args.get("system") or coding.get("system"), args.get("code") or coding.get("code")
        if not system or not code:
            raise InvalidRequest("$translate needs system and code (or a coding with both)")
        crosswalks = self.crosswalks()
        if map_id is not None:
            if map_id not in crosswalks:
                raise NotFound(f"ConceptMap/{map_id} is not known")
            crosswalks = {map_id: crosswalks[map_id]}
        elif args.get("url"):
            crosswalks = {n: c for n, c in crosswalks.items() if c.url == args["url"]}
            if not crosswalks:
                raise NotFound(f"no ConceptMap has url {args['url']}")
        wanted_system = args.get("targetsystem")
        matches = []
        for crosswalk in crosswalks.values():
            for row in crosswalk.rows:
                if args.get("reverse"):
                    if (row.target_system, row.target_code) != (system, code) or (
                        wanted_system and wanted_system != crosswalk.local_system
                    ):
                        continue
                    concept: dict | None = _coding(crosswalk.local_system, row.local_code, crosswalk.displays.get(row.local_code))
                else:
                    if crosswalk.local_system != system or row.local_code != code or (wanted_system and wanted_system != row.target_system):
                        continue
                    concept = _coding(row.target_system, row.target_code, row.target_display) if row.target_code else None
                part: list[dict[str, Any]] = [{"name": "equivalence", "valueCode": row.equivalence}]
                if concept:
                    part.append({"name": "concept", "valueCoding": concept})
                part.append({"name": "source", "valueUri": crosswalk.url})
                matches.append(part)
        result = any(part[0]["valueCode"] not in _NOT_A_MATCH for part in matches)
        parameters = [{"name": "result", "valueBoolean": result}]
        if not result:
            parameters.append(
                {
                    "name": "message",
                    "valueString": f"No translation for {system}|{code}" + (" (known, deliberately unmapped)" if matches else ""),
                }
            )
        parameters += [{"name": "match", "part": part} for part in matches]
        return {"resourceType": "Parameters", "parameter": parameters}

    # -- CodeSystem -------------------------------------------------------
    def code_systems(self) -> dict[str, dict]:
        systems: dict[str, dict] = {}
        for name, spec in self.code_tables.specs.items():
            if spec.system is None:
                continue  # rows naming their own systems are not one CodeSystem
            concepts = [_concept(c.code, c.display) for c in self.code_tables.concepts(name)]
            systems[spec.system] = _code_system(name, spec.system, spec.title, "complete", concepts, self._version(), self._publisher())
        for name, crosswalk in sorted(self.terminology.current().crosswalks.items()):
            if crosswalk.local_system in systems:
                continue  # the legacy code table is the complete list
            codes = dict.fromkeys(row.local_code for row in crosswalk.rows)
            concepts = [_concept(code, crosswalk.displays.get(code)) for code in codes]
            systems[crosswalk.local_system] = _code_system(
                name, crosswalk.local_system, crosswalk.title, "fragment", concepts, crosswalk.version, self._publisher()
            )
        return systems

    def code_system(self, system_id: str) -> dict:
        for resource in self.code_systems().values():
            if resource["id"] == system_id:
                return resource
        raise NotFound(f"CodeSystem/{system_id} is not known")

    def search_code_systems(self, params: dict[str, str]) -> list[dict]:
        found = list(self.code_systems().values())
        if "url" in params or "system" in params:
            found = [r for r in found if r["url"] in (params.get("url"), params.get("system"))]
        if "_id" in params:
            found = [r for r in found if r["id"] == params["_id"]]
        return list(found)

    def lookup(self, args: dict[str, Any]) -> dict:
        coding = args.get("coding") or {}
        system, code = args.get("system") or coding.get("system"), args.get("code") or coding.get("code")
        if not system or not code:
            raise InvalidRequest("$lookup needs system and code (or a coding with both)")
        resource = self.code_systems().get(system)
        if resource is None:
            raise NotFound(f"{system} is not a code system this server knows (it serves its local code systems)")
        concept = next((c for c in resource.get("concept", []) if c["code"] == code), None)
        if concept is None:
            raise NotFound(f"{code} is not a code of {system}")
        parameters = [{"name": "name", "valueString": resource["title"]}, {"name": "version", "valueString": resource["version"]}]
        if concept.get("display"):
            parameters.append({"name": "display", "valueString": concept["display"]})
        return {"resourceType": "Parameters", "parameter": parameters}

    # -- ValueSet ---------------------------------------------------------
    def value_sets(self) -> list[dict]:
        return [self._value_set(name) for name in sorted(self.code_tables.specs)]

    def value_set(self, set_id: str) -> dict:
        if set_id not in self.code_tables.specs:
            raise NotFound(f"ValueSet/{set_id} is not known")
        return self._value_set(set_id)

    def expand(self, args: dict[str, Any], set_id: str | None = None) -> dict:
        if set_id is None:
            url = args.get("url")
            if not url:
                raise InvalidRequest("ValueSet/$expand needs url (or use ValueSet/{id}/$expand)")
            named = url[len(VALUESET_URL) :] if url.startswith(VALUESET_URL) else None
            if named is None or named not in self.code_tables.specs:
                raise NotFound(f"no ValueSet has url {url}")
            set_id = named
        value_set = self.value_set(set_id)
        spec = self.code_tables.specs[set_id]
        text = str(args.get("filter") or "").lower()
        offset, count = _natural(args.get("offset"), "offset", 0) or 0, _natural(args.get("count"), "count", None)
        concepts = [c for c in self.code_tables.concepts(set_id) if not text or text in c.code.lower() or text in (c.display or "").lower()]
        page = concepts[offset : None if count is None else offset + count]
        expansion: dict = {"timestamp": _now(), "total": len(concepts), "offset": offset}
        if text:
            expansion["parameter"] = [{"name": "filter", "valueString": args["filter"]}]
        if page:
            expansion["contains"] = [_coding(spec.system, c.code, c.display) for c in page]
        return {**value_set, "expansion": expansion}

    def _value_set(self, name: str) -> dict:
        spec = self.code_tables.specs[name]
        return {
            "resourceType": "ValueSet",
            "id": name,
            "url": VALUESET_URL + name,
            "version": self._version(),
            "name": _computable(name),
            "title": f"All codes of {spec.title}",
            "status": "active",
            "publisher": self._publisher(),
            "compose": {"include": [{"system": spec.system}]},
        }

    def _version(self) -> str:
        return self.terminology.current().version or "1"

    def _publisher(self) -> str:
        return self.terminology.current().publisher or "fhir-facade"


def concept_map(crosswalk: Crosswalk, publisher: str) -> dict:
    groups: dict[str | None, dict[str, dict]] = {}
    for row in crosswalk.rows:
        elements = groups.setdefault(row.target_system, {})
        element = elements.setdefault(
            row.local_code, {"code": row.local_code, **_display(crosswalk.displays.get(row.local_code)), "target": []}
        )
        target: dict = {"equivalence": row.equivalence}
        if row.target_code:
            target = {"code": row.target_code, **_display(row.target_display), **target}
        if row.equivalence in _COMMENTS:
            target["comment"] = _COMMENTS[row.equivalence]
        element["target"].append(target)
    resource: dict = {
        "resourceType": "ConceptMap",
        "id": crosswalk.name,
        "url": crosswalk.url,
        "version": crosswalk.version or "1",
        "name": _computable(crosswalk.name),
        "title": crosswalk.title,
        "status": "active",
        "publisher": publisher,
        "group": [],
    }
    for system in sorted(groups, key=lambda s: (s is None, s or "")):
        group: dict = {"source": crosswalk.local_system}
        if system:
            group["target"] = system
        group["element"] = list(groups[system].values())
        resource["group"].append(group)
    return resource


def _code_system(name: str, url: str, title: str, content: str, concepts: list[dict], version: str, publisher: str) -> dict:
    resource = {
        "resourceType": "CodeSystem",
        "id": name,
        "url": url,
        "version": version or "1",
        "name": _computable(name),
        "title": title,
        "status": "active",
        "publisher": publisher,
        "content": content,
        "caseSensitive": True,
        "count": len(concepts),
    }
    if concepts:
        resource["concept"] = concepts
    return resource


def _concept(code: str, display: str | None) -> dict:
    return {"code": code, **_display(display)}


def _coding(system: str | None, code: str | None, display: str | None) -> dict:
    return {k: v for k, v in (("system", system), ("code", code), ("display", display)) if v}


def _display(display: str | None) -> dict:
    return {"display": display} if display else {}


def _computable(name: str) -> str:
    """ConceptMap.name and friends must be computer-usable: 'demo-lab' → 'DemoLab'."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) or "Unnamed"


def _natural(value: Any, name: str, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    # ASCII digits only: int() would also take '٣', '1_000' or ' 7 '.
    digits = isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit()
    if isinstance(value, bool) or not (isinstance(value, int) or digits):
        raise InvalidRequest(f"{name} must be a whole number, not {str(value)[:40]!r}")
    number = int(value)
    if number < 0:
        raise InvalidRequest(f"{name} must not be negative")
    return number


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
