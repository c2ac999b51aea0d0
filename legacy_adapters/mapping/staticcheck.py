"""What a mapping can be checked for without its database, beyond the format's shape.

Resource type names; each source's templates against FHIR R4 (:mod:`fhircheck`), once per
variant with its variables substituted (an undefined ``${var}`` is an error, as is any
``${…}`` in a source without variants); search bindings against their parameter's type;
row filters with exactly one operator; hooks, code tables and crosswalks that exist;
reference parameters naming real resource types. Every problem names its place in the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legacy_adapters.mapping.errors import Problems
from legacy_adapters.mapping.fhircheck import TemplateChecker, is_value_expression
from legacy_adapters.mapping.fhirdefs import RESOURCE_TYPES
from legacy_adapters.mapping.validate import suggest
from legacy_adapters.mapping.variants import VAR, expand_variant
from legacy_adapters.mapping.yamlpos import key_mark, mark_of

if TYPE_CHECKING:
    from legacy_adapters.mapping.loader import MappingSpec

_OPERATORS = ("equals", "not_equals", "in", "not_in", "is_null", "greater_than", "at_least", "less_than")
# The keys a search binding may use, per parameter type (``absent`` everywhere).
_BINDING_KEYS = {
    "token": {"column", "const", "system", "map", "otherwise", "default", "codings", "lookup", "crosswalk", "split_codings", "first"},
    "string": {"column", "columns", "normalized", "first"},
    "date": {"column", "date", "end", "first", "parts"},
    "reference": {"column", "template", "type"},
}
_BINDING_NEEDS = {
    "token": ("column", "const", "codings", "first"),
    "string": ("column", "columns", "first"),
    "date": ("column", "first", "parts"),
    "reference": ("column", "template"),
}


def check_mapping_statically(document: dict, mapping: MappingSpec, problems: Problems, skip: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    checker = TemplateChecker(problems, _names(mapping))
    for type_name, spec in document["resources"].items():
        if type_name in skip:
            continue
        if type_name not in RESOURCE_TYPES:
            problems.add(
                f"'{type_name}' is not a FHIR R4 resource type{suggest(type_name, RESOURCE_TYPES)}",
                key_mark(document["resources"], type_name),
            )
            continue
        declared = spec.get("search") or {}
        for name, param in declared.items():
            for target in [param["target"]] if isinstance(param.get("target"), str) else param.get("target") or []:
                if target not in RESOURCE_TYPES:
                    problems.add(
                        f"search parameter {name!r}: target '{target}' is not a FHIR R4 resource type{suggest(target, RESOURCE_TYPES)}",
                        mark_of(param, "target"),
                        type_name,
                    )
        for source in spec["sources"]:
            where = f"{type_name} source {source.get('name', source['table'])!r}"
            for expanded in _expansions(source, where, problems):
                _check_source(type_name, expanded, declared, where, checker, problems)


def _names(mapping: MappingSpec) -> dict[str, set[str] | None]:
    hooks = mapping.hooks
    snapshot = mapping.terminology.current() if mapping.terminology is not None else None
    return {
        "hooks": {n for n in dir(hooks) if callable(getattr(hooks, n, None))} if hooks is not None else set(),
        "code_tables": set(mapping.code_tables),
        "crosswalks": set(snapshot.crosswalks) if snapshot is not None else set(),
        "units": set(snapshot.units) if snapshot is not None else set(),
        "has_hooks": {"yes"} if hooks is not None else set(),
    }


def _expansions(source: dict, where: str, problems: Problems) -> list[dict]:
    if source.get("variants"):
        return [expand_variant(source, variant, problems) for variant in source["variants"]]
    for text, mark in _strings(source):
        for name in VAR.findall(text):
            problems.add(f"${{{name}}} is a variable, but this source has no variants to define it", mark, where)
    return [source]


def _strings(node: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, str):
        if "${" in node:
            found.append((node, mark_of(node)))
    elif isinstance(node, dict):
        for value in node.values():
            found += _strings(value)
    elif isinstance(node, list):
        for value in node:
            found += _strings(value)
    return found


def _check_source(type_name: str, source: dict, declared: dict, where: str, checker: TemplateChecker, problems: Problems) -> None:
    checker.resource(type_name, source["resource"], where)
    if "last_updated" in source:
        checker.value(source["last_updated"], "last_updated", where, source, "last_updated")
    for name, filters in [("where", source.get("where"))] + [
        (f"joins[{i}].where", j.get("where")) for i, j in enumerate(source.get("joins") or [])
    ]:
        for i, item in enumerate(filters or []):
            _check_filter(item, f"{name}[{i}]", where, problems)
    for name, binding in (source.get("search") or {}).items():
        param = declared.get(name)
        if param is not None and binding is not None:
            _check_binding(str(param["type"]), binding, f"search.{name}", where, checker, problems, source["search"], name)


def _check_filter(item: Any, path: str, where: str, problems: Problems) -> None:
    if not isinstance(item, dict):
        return
    if "any" in item:
        for i, inner in enumerate(item["any"] or []):
            _check_filter(inner, f"{path}.any[{i}]", where, problems)
        return
    operators = [op for op in _OPERATORS if op in item]
    if len(operators) != 1:
        found = ", ".join(operators) or "none"
        problems.add(f"{path}: a filter has exactly one operator ({', '.join(_OPERATORS)}); found {found}", mark_of(item), where)


def _check_binding(
    param_type: str, binding: Any, path: str, where: str, checker: TemplateChecker, problems: Problems, parent: Any, key: Any
) -> None:
    if not isinstance(binding, dict):
        return
    allowed = _BINDING_KEYS[param_type] | {"absent"}
    for name in binding:
        if name not in allowed:
            expected = ", ".join(sorted(allowed))
            problems.add(
                f"{path}: '{name}' does not apply to a {param_type} parameter{suggest(name, allowed)} (expected: {expected})",
                key_mark(binding, name),
                where,
            )
    if not any(need in binding for need in _BINDING_NEEDS[param_type]) and not (param_type == "token" and "lookup" in binding):
        problems.add(f"{path}: a {param_type} binding needs one of: {', '.join(_BINDING_NEEDS[param_type])}", mark_of(parent, key), where)
    names = checker.names
    for name, kind in (("lookup", "code_tables"), ("crosswalk", "crosswalks")):
        used = binding.get(name)
        if isinstance(used, str) and "${" not in used and used not in (names.get(kind) or set()):
            problems.add(f"{path}: {name} '{used}' is not defined{suggest(used, names.get(kind) or ())}", mark_of(binding, name), where)
    if "otherwise" in binding and "map" not in binding:
        problems.add(f"{path}: 'otherwise' needs 'map'", key_mark(binding, "otherwise"), where)
    for i, item in enumerate(binding.get("codings") or []):
        _check_binding(param_type, item, f"{path}.codings[{i}]", where, checker, problems, binding["codings"], i)
    for i, item in enumerate(binding.get("first") or []):
        _check_binding(param_type, item, f"{path}.first[{i}]", where, checker, problems, binding["first"], i)
    if is_value_expression(binding) and param_type == "date" and "end" in binding and "first" in binding:
        problems.add(f"{path}: a period ('end') cannot also be 'first'", mark_of(binding), where)
