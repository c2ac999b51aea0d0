"""Loading a mapping file: what the façade serves, known without touching the database.

The parameter catalogue and the CapabilityStatement come from here, so the server
can start, and say what it supports, while the legacy database is still down.
Binding to real tables happens later, in :mod:`binder`.
"""

from __future__ import annotations

import copy
import importlib
import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from facade.search.params import SearchParamDef, SortKey
from legacy_adapters.mapping.errors import MappingError

PARAM_TYPES = ("token", "string", "date", "reference")
_VAR = re.compile(r"\$\{(\w+)\}")
_VARIANT_KEYS = {"name", "require", "where", "vars", "resource", "search"}
_SOURCE_KEYS = {"name", "table", "alias", "joins", "collections", "where", "id", "last_updated", "resource", "search", "variants"}


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


def load_mapping(path: str | Path) -> MappingSpec:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"cannot read mapping {path}: {exc}") from None
    return parse_mapping(document, str(path))


def parse_mapping(document: Any, origin: str = "<mapping>") -> MappingSpec:
    if not isinstance(document, dict) or not isinstance(document.get("resources"), dict):
        raise MappingError(f"{origin}: a mapping needs a 'resources' section")
    try:
        tz = ZoneInfo(document.get("timezone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(f"{origin}: unknown timezone {document.get('timezone')!r}") from None
    hooks = None
    if document.get("hooks"):
        try:
            hooks = importlib.import_module(document["hooks"])
        except ImportError as exc:
            raise MappingError(f"{origin}: cannot import hooks module {document['hooks']!r}: {exc}") from None
    resources = {type_name: _parse_resource(type_name, spec, origin) for type_name, spec in document["resources"].items()}
    terminology = _terminology(document.get("terminology"), origin)
    return MappingSpec(
        terminology=terminology,
        name=document.get("mapping", Path(origin).stem),
        description=document.get("description", ""),
        timezone=tz,
        hooks=hooks,
        resources=resources,
        path=origin,
    )


def _terminology(section: Any, origin: str) -> Any:
    """``terminology: {crosswalks: [sets...], code_tables: {...}, check_seconds: 5}``; a set is a manifest path relative
    to the mapping file, or ``package:path`` for sets shipped inside an installed Python package."""
    if section is None:
        return None
    from terminology.files import TerminologyError
    from terminology.registry import Terminology

    if not isinstance(section, dict) or not isinstance(section.get("crosswalks"), list):
        raise MappingError(f"{origin}: 'terminology' needs 'crosswalks': a list of crosswalk manifests")
    from legacy_adapters.code_tables import CodeTableSpec

    manifests = [_resolve_file(str(item), origin) for item in section["crosswalks"]]
    try:
        code_tables = {name: CodeTableSpec.parse(name, spec or {}) for name, spec in (section.get("code_tables") or {}).items()}
        return Terminology(manifests, check_seconds=float(section.get("check_seconds", 5)), code_tables=code_tables)
    except (TerminologyError, ValueError) as exc:
        raise MappingError(f"{origin}: {exc}") from None


def _resolve_file(ref: str, origin: str) -> Path:
    package, colon, inner = ref.partition(":")
    if colon and "/" not in package and "\\" not in package and len(package) > 1:
        try:
            return Path(str(importlib.resources.files(package) / inner))
        except ModuleNotFoundError:
            raise MappingError(f"{origin}: no installed package {package!r} for {ref!r}") from None
    path = Path(ref).expanduser()
    return path if path.is_absolute() else Path(origin).resolve().parent / path


def _parse_resource(type_name: str, spec: dict, origin: str) -> ResourceSpec:
    where = f"{origin}: {type_name}"
    sources = spec.get("sources")
    if not sources:
        raise MappingError(f"{where}: needs at least one source")
    for source in sources:
        unknown = set(source) - _SOURCE_KEYS
        if unknown:
            raise MappingError(f"{where}: unknown source keys {sorted(unknown)}")
        for variant in source.get("variants") or []:
            unknown = set(variant) - _VARIANT_KEYS if isinstance(variant, dict) else {"(not a mapping)"}
            if unknown or not isinstance(variant.get("name"), str):
                raise MappingError(
                    f"{where}: source {source.get('name', '?')!r}: a variant needs a 'name' and only {sorted(_VARIANT_KEYS)}"
                )
        for key in ("table", "id", "resource"):
            if key not in source:
                raise MappingError(f"{where}: source {source.get('name', '?')!r} needs '{key}'")
    params: dict[str, SearchParamDef] = {
        "_id": SearchParamDef("_id", "token", description="Logical id of the resource", sortable=True),
    }
    if all("last_updated" in s for s in sources):
        params["_lastUpdated"] = SearchParamDef("_lastUpdated", "date", description="When the legacy row last changed", sortable=True)
    for name, declared in (spec.get("search") or {}).items():
        declared = declared or {}
        if declared.get("type") not in PARAM_TYPES:
            raise MappingError(f"{where}: search parameter {name!r} needs a type, one of {PARAM_TYPES}")
        if declared["type"] == "reference" and not declared.get("target"):
            raise MappingError(f"{where}: reference parameter {name!r} needs a target type")
        if not any(name in (s.get("search") or {}) for s in sources):
            raise MappingError(f"{where}: search parameter {name!r} is declared but no source binds it")
        target = declared.get("target")
        targets: tuple[str, ...] = ()
        if isinstance(target, list):  # several target types (e.g. Provenance 'target')
            targets = tuple(target) if len(target) > 1 else ()
            target = target[0] if len(target) == 1 else "Resource"
        params[name] = SearchParamDef(
            name,
            declared["type"],
            target=target,
            targets=targets,
            description=declared.get("description", ""),
            sortable=bool(declared.get("sortable", False)),
        )
    for source in sources:
        for name in source.get("search") or {}:
            if name not in params:
                raise MappingError(f"{where}: source {source.get('name')!r} binds undeclared search parameter {name!r}")
    default_sort = tuple(SortKey(item.lstrip("-"), item.startswith("-")) for item in spec.get("default_sort", ["_id"]))
    for key in default_sort:
        if key.name not in params:
            raise MappingError(f"{where}: default_sort uses unknown parameter {key.name!r}")
    return ResourceSpec(type_name, params, default_sort, tuple(sources))


def expand_variant(source: dict, variant: dict) -> dict:
    """The source as one of its variants sees it (one legacy row → several resources):
    ``${name}`` replaced by the variant's ``vars`` everywhere, its ``resource`` and ``search``
    merged over the source's (a key set to null removes it), its ``where`` filters added, and
    its ``require`` columns listed. The binder and ``mapping check`` both read variants this way."""
    variables = {"variant": variant["name"], **(variant.get("vars") or {})}
    merged = _substitute(copy.deepcopy({k: v for k, v in source.items() if k != "variants"}), variables)
    merged["resource"] = _merge(merged["resource"], _substitute(variant.get("resource"), variables))
    merged["search"] = _merge(merged.get("search") or {}, _substitute(variant.get("search"), variables))
    merged["where"] = [*(merged.get("where") or []), *(_substitute(variant.get("where"), variables) or [])]
    merged["require"] = list(variant.get("require") or [])
    return merged


def _substitute(node: Any, variables: dict[str, Any]) -> Any:
    """Replace ``${name}`` with the variant's variables, everywhere in a spec."""
    if isinstance(node, str):
        whole = _VAR.fullmatch(node)
        if whole:  # keep the variable's own type (numbers, lists, None)
            return variables.get(whole.group(1), node)
        return _VAR.sub(lambda m: str(variables.get(m.group(1), m.group(0))), node)
    if isinstance(node, dict):
        return {k: _substitute(v, variables) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, variables) for v in node]
    return node


def _merge(base: dict, override: dict | None) -> dict:
    merged = dict(base)
    for key, value in (override or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
