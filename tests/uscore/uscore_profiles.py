"""US Core 6.1 profile claims held to the official package's snapshots (required elements wherever
their parent is present, required pattern slices)."""

from __future__ import annotations

import json
import tarfile
from functools import cache
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_PACKAGES = [shared / "reference" / "us-core" / "hl7.fhir.us.core-6.1.0.tgz" for shared in (_REPO.parent / "shared", Path("/work/shared"))]
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


@cache
def snapshot(url: str) -> list[dict]:
    name = url.removeprefix(US_CORE)
    package_path = next((path for path in _PACKAGES if path.is_file()), None)
    if package_path is None:
        pytest.skip("the US Core 6.1.0 package is not found beside the repository (../shared/reference/us-core/)")
    with tarfile.open(package_path) as package:
        member = package.extractfile(f"package/StructureDefinition-{name}.json")
        assert member is not None
        return json.load(member)["snapshot"]["element"]


def _children(values: list, name: str) -> list:
    found = []
    for value in values:
        item = value.get(name) if isinstance(value, dict) else None
        found += item if isinstance(item, list) else [] if item is None else [item]
    return found


def _present(value: dict, name: str) -> bool:
    if name.endswith("[x]"):
        return any(k.startswith(name[:-3]) and k[len(name) - 3 : len(name) - 2].isupper() for k in value)
    return name in value or f"_{name}" in value


def _pattern_holds(items: list, pattern: dict) -> bool:
    wanted = {(c.get("system"), c.get("code")) for c in pattern.get("coding", [])}
    return any(wanted <= {(c.get("system"), c.get("code")) for c in item.get("coding", [])} for item in items)


def profile_problems(resource: dict, url: str) -> list[str]:
    """Required elements (min ≥ 1 wherever the parent is present) and required pattern slices."""
    problems = []
    for element in snapshot(url):
        parts = element["path"].split(".")[1:]
        if not parts or element.get("min", 0) < 1 or parts[-1] in ("extension", "modifierExtension"):
            continue
        parents = [resource]
        for name in parts[:-1]:
            parents = _children(parents, name.removesuffix("[x]"))
        if ":" in element["id"].split(".")[-1]:  # a required slice: some item carries its pattern
            pattern = element.get("patternCodeableConcept")
            if pattern and not all(_pattern_holds(_children([p], parts[-1]), pattern) for p in parents):
                problems.append(element["id"])
            continue
        problems += [element["path"] for p in parents if isinstance(p, dict) and not _present(p, parts[-1])]
    return problems
