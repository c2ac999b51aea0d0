"""Loading a mapping file: what the façade serves, known without touching the database.

The parameter catalogue and the CapabilityStatement come from here, so the server
can start, and say what it supports, while the legacy database is still down.
Loading checks everything that can be checked without the database – the format
(:mod:`format`, :mod:`validate`), the resource templates against FHIR R4
(:mod:`fhircheck`), variables, search bindings (:mod:`staticcheck`) – and reports every
problem at its ``file:line:column``. Binding to real tables happens later, in :mod:`binder`.
"""

from __future__ import annotations

import importlib
import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from facade.errors import FacadeError
from facade.search.params import SearchParamDef, SortKey
from facade.search.parser import parse_search
from legacy_adapters.mapping import yamlpos
from legacy_adapters.mapping.errors import MappingError, Problems
from legacy_adapters.mapping.staticcheck import check_mapping_statically
from legacy_adapters.mapping.validate import check_document
from legacy_adapters.mapping.variants import expand_variant
from legacy_adapters.mapping.yamlpos import key_mark, mark_of

PARAM_TYPES = ("token", "string", "date", "reference")


@dataclass(frozen=True)
class ResourceSpec:
    type: str
    params: dict[str, SearchParamDef]
    default_sort: tuple[SortKey, ...]
    sources: tuple[dict, ...]


@dataclass(frozen=True)
class MappingSpec:
    name: str
    description: str
    timezone: ZoneInfo
    hooks: Any  # module holding the mapping's Python hooks, or None
    resources: dict[str, ResourceSpec] = field(default_factory=dict)
    path: str = ""
    terminology: Any = None  # terminology.registry.Terminology, when the mapping names crosswalk sets
    code_tables: dict[str, Any] = field(default_factory=dict)  # name -> code_tables.CodeTableSpec
    groups: dict[str, dict[str, str]] = field(default_factory=dict)  # Group id -> {name, members: a Patient search}


def claimed_profiles(resource: ResourceSpec) -> list[str]:
    """The profiles a type's sources (and their variants) write into ``meta.profile``, in order."""
    found: dict[str, None] = {}
    for source in resource.sources:
        for variant in source.get("variants") or [None]:
            template = (expand_variant(source, variant) if variant else source).get("resource") or {}
            meta = template.get("meta") if isinstance(template, dict) else None
            for claim in (meta or {}).get("profile") or [] if isinstance(meta, dict) else []:
                # A constant claim, or one a row makes when its data allow (a hook or expression
                # naming the profile): either way the type supports that profile.
                for url in [claim] if isinstance(claim, str) else _profile_urls(claim):
                    found[url] = None
    return list(found)


def _profile_urls(claim: object) -> list[str]:
    if isinstance(claim, str):
        return [claim] if "/StructureDefinition/" in claim else []
    if isinstance(claim, dict):
        return [url for value in claim.values() for url in _profile_urls(value)]
    if isinstance(claim, list):
        return [url for value in claim for url in _profile_urls(value)]
    return []


def load_mapping(path: str | Path) -> MappingSpec:
    path = Path(path)
    try:
        document = yamlpos.load(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "mark", None)
        if isinstance(mark, yamlpos.Mark):
            raise MappingError(str(exc).partition(": ")[2] or str(exc), mark) from None
        where = yamlpos.Mark(str(path), mark.line + 1, mark.column + 1) if mark is not None else None
        raise MappingError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", where) from None
    return parse_mapping(document, str(path))


def parse_mapping(document: Any, origin: str = "<mapping>") -> MappingSpec:
    if not isinstance(document, dict):
        raise MappingError("a mapping is a YAML mapping with a 'resources' section", yamlpos.Mark(origin, 1, 1))
    problems = Problems()
    check_document(document, problems)
    if any(not p.where.startswith("resources.") for p in problems.found) or not isinstance(document.get("resources"), dict):
        problems.raise_any()  # the checks below read the mapping's shape
    misshapen = {p.where.split(".")[1] for p in problems.found if p.where.startswith("resources.")}  # checked no further
    tz = _timezone(document, problems)
    hooks = _hooks(document, problems)
    terminology = _terminology(document.get("terminology"), origin, problems)
    code_tables = _code_tables(document, problems)
    resources = {}
    for type_name, spec in document["resources"].items():
        if type_name in misshapen:
            continue
        try:
            resources[str(type_name)] = _parse_resource(str(type_name), spec)  # plain text: names reach JSON as keys
        except MappingError as exc:
            problems.extend(exc)
    mapping = MappingSpec(
        terminology=terminology,
        name=document.get("mapping", Path(origin).stem),
        description=document.get("description", ""),
        timezone=tz,
        hooks=hooks,
        resources=resources,
        path=origin,
        code_tables=code_tables,
        groups=_groups(document, resources, problems),
    )
    check_mapping_statically(document, mapping, problems, skip=misshapen)
    problems.raise_any()
    return mapping


def _timezone(document: dict, problems: Problems) -> ZoneInfo:
    try:
        return ZoneInfo(document.get("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(
            f"unknown timezone {document.get('timezone')!r}: expected an IANA name such as America/New_York", mark_of(document, "timezone")
        )
        return ZoneInfo("UTC")


def _hooks(document: dict, problems: Problems) -> Any:
    if not document.get("hooks"):
        return None
    try:
        return importlib.import_module(document["hooks"])
    except ImportError as exc:
        problems.add(f"cannot import hooks module {document['hooks']!r}: {exc}", mark_of(document, "hooks"))
        return None


def _groups(document: dict, resources: dict[str, ResourceSpec], problems: Problems) -> dict[str, dict[str, str]]:
    """``groups``: each a name and its members as a Patient search, checked by the search parser."""
    section = document.get("groups") or {}
    groups = {}
    for group_id, group in section.items():
        where = mark_of(section, group_id)
        if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", str(group_id)):
            problems.add(f"group id {group_id!r} is not a FHIR id (letters, digits, '-' and '.')", where)
            continue
        if "Patient" not in resources:
            problems.add("groups need a Patient resource: their members are a Patient search", where)
            continue
        try:
            parse_search("Patient", parse_qsl(str(group["members"])), resources["Patient"].params, strict=True)
        except FacadeError as error:
            problems.add(f"group {group_id}: members {group['members']!r} is not a Patient search here: {error.diagnostics}", where)
            continue
        groups[str(group_id)] = {"name": str(group["name"]), "members": str(group["members"])}
    return groups


def _code_tables(document: dict, problems: Problems) -> dict[str, Any]:
    from legacy_adapters.code_tables import CodeTableSpec

    found: dict[str, Any] = {}
    published = (document.get("terminology") or {}).get("code_tables") or {}
    for section, published_here in ((published, True), (document.get("code_tables") or {}, False)):
        for name, spec in section.items():
            if name in found:
                problems.add(f"code table {name!r} is declared twice", key_mark(section, name))
                continue
            try:
                found[str(name)] = CodeTableSpec.parse(name, spec or {}, published=published_here)
            except ValueError as exc:
                problems.add(str(exc), mark_of(section, name))
    return found


def _terminology(section: Any, origin: str, problems: Problems) -> Any:
    """``terminology: {crosswalks: [sets...], code_tables: {...}, check_seconds: 5}``; a set is a manifest path relative
    to the mapping file, or ``package:path`` for sets shipped inside an installed Python package."""
    if section is None:
        return None
    from legacy_adapters.code_tables import CodeTableSpec
    from terminology.files import TerminologyError
    from terminology.registry import Terminology

    try:
        manifests = [_resolve_file(str(item), origin) for item in section["crosswalks"]]
        code_tables = {str(name): CodeTableSpec.parse(name, spec or {}) for name, spec in (section.get("code_tables") or {}).items()}
        return Terminology(manifests, check_seconds=float(section.get("check_seconds", 5)), code_tables=code_tables)
    except (TerminologyError, ValueError, MappingError) as exc:
        problems.add(str(exc), mark_of(section, "crosswalks"))
        return None


def _resolve_file(ref: str, origin: str) -> Path:
    package, colon, inner = ref.partition(":")
    if colon and "/" not in package and "\\" not in package and len(package) > 1:
        try:
            return Path(str(importlib.resources.files(package) / inner))
        except ModuleNotFoundError:
            raise MappingError(f"{origin}: no installed package {package!r} for {ref!r}") from None
    path = Path(ref).expanduser()
    return path if path.is_absolute() else Path(origin).resolve().parent / path


def _parse_resource(type_name: str, spec: dict) -> ResourceSpec:
    problems = Problems()
    sources = spec["sources"]
    params: dict[str, SearchParamDef] = {
        "_id": SearchParamDef("_id", "token", description="Logical id of the resource", sortable=True),
    }
    if all("last_updated" in s for s in sources):
        params["_lastUpdated"] = SearchParamDef("_lastUpdated", "date", description="When the legacy row last changed", sortable=True)
    declared_params = spec.get("search") or {}
    for name, declared in declared_params.items():
        if declared["type"] == "reference" and not declared.get("target"):
            problems.add(f"reference parameter {name!r} needs a target type", mark_of(declared), type_name)
        if not any(name in (s.get("search") or {}) or _variant_binds(s, name) for s in sources):
            problems.add(f"search parameter {name!r} is declared but no source binds it", key_mark(declared_params, name), type_name)
        target = declared.get("target")
        targets: tuple[str, ...] = ()
        if isinstance(target, list):  # several target types (e.g. Provenance 'target')
            targets = tuple(str(t) for t in target) if len(target) > 1 else ()
            target = target[0] if len(target) == 1 else "Resource"
        params[str(name)] = SearchParamDef(
            str(name),
            str(declared["type"]),
            target=str(target) if target is not None else None,
            targets=targets,
            description=str(declared.get("description", "")),
            sortable=bool(declared.get("sortable", False)),
        )
    for source in sources:
        bound = [*(source.get("search") or {})] + [n for v in source.get("variants") or [] for n in (v.get("search") or {})]
        for name in bound:
            if name not in params:
                problems.add(
                    f"source {source.get('name', source['table'])!r} binds search parameter {name!r}, which is not declared"
                    f" under {type_name}.search",
                    _binding_mark(source, name),
                    type_name,
                )
    default_sort = tuple(SortKey(str(item).lstrip("-"), str(item).startswith("-")) for item in spec.get("default_sort", ["_id"]))
    for i, key in enumerate(default_sort):
        if key.name not in params:
            problems.add(f"default_sort uses unknown parameter {key.name!r}", mark_of(spec.get("default_sort"), i), type_name)
    problems.raise_any()
    return ResourceSpec(type_name, params, default_sort, tuple(sources))


def _variant_binds(source: dict, name: str) -> bool:
    return any(name in (variant.get("search") or {}) for variant in source.get("variants") or [])


def _binding_mark(source: dict, name: str) -> Any:
    if name in (source.get("search") or {}):
        return key_mark(source["search"], name)
    return next((key_mark(v["search"], name) for v in source.get("variants") or [] if name in (v.get("search") or {})), mark_of(source))


__all__ = ["MappingSpec", "ResourceSpec", "claimed_profiles", "expand_variant", "load_mapping", "parse_mapping"]
