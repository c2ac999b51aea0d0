"""Reading a crosswalk set: one manifest (YAML) naming CSV files beside it.

Manifest (``crosswalks.yaml``)::

    format: 1                      # this file format's version
    version: "2026.11.1"           # the set's version (ConceptMap.version); bump on every edit
    aliases:  {standard: {ICD10: http://hl7.org/fhir/sid/icd-10-cm, ...}}
    crosswalks:
      demo-lab: {title: ..., local_system: urn:..., file: lab.csv, aliases: standard}
    units:
      demo-lab-units: {title: ..., file: units.csv}

Crosswalk CSV columns: ``local_code,local_display,target_system,target_code,target_display,equivalence``
(``target_system`` may be an alias; empty target + ``unmatched`` = known, deliberately unmapped).
Units CSV columns: ``legacy_unit,ucum_code,ucum_display,convert_to,factor``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import yaml

from terminology.model import EQUIVALENCES, Crosswalk, CrosswalkRow, Snapshot, UnitMap, UnitMapping

FORMAT = 1
CROSSWALK_COLUMNS = ("local_code", "local_display", "target_system", "target_code", "target_display", "equivalence")
UNIT_COLUMNS = ("legacy_unit", "ucum_code", "ucum_display", "convert_to", "factor")


class TerminologyError(ValueError):
    """A crosswalk set that cannot be used; the message names the file and row."""


def manifest_files(manifest: Path) -> list[Path]:
    """Every file a set consists of (the manifest first): what a reload watches."""
    document = _read_manifest(manifest)
    files = [manifest]
    for section in ("crosswalks", "units"):
        files += [
            manifest.parent / entry["file"]
            for entry in (document.get(section) or {}).values()
            if isinstance(entry, dict) and "file" in entry
        ]
    return files


def load_snapshot(manifests: list[Path], generation: int = 0) -> Snapshot:
    """Load one or more sets into one snapshot; names must be unique across them."""
    crosswalks: dict[str, Crosswalk] = {}
    aliases: dict[str, Mapping[str, str]] = {}
    units: dict[str, UnitMap] = {}
    versions, publishers = [], []
    for manifest in manifests:
        document = _read_manifest(manifest)
        version = str(document.get("version", ""))
        versions.append(version)
        publishers.append(str(document.get("publisher", "")))
        for name, table in (document.get("aliases") or {}).items():
            if not isinstance(table, dict):
                raise TerminologyError(f"{manifest}: aliases {name!r} must map short names to system URIs")
            _unique(name, aliases, manifest)
            aliases[name] = MappingProxyType({str(k): str(v) for k, v in table.items()})
        for name, entry in (document.get("crosswalks") or {}).items():
            _unique(name, crosswalks, manifest)
            crosswalks[name] = _crosswalk(manifest, name, entry, version, aliases)
        for name, entry in (document.get("units") or {}).items():
            _unique(name, units, manifest)
            units[name] = _units(manifest, name, entry)
    return Snapshot(
        version=";".join(v for v in versions if v),
        publisher=next((p for p in publishers if p), ""),
        crosswalks=MappingProxyType(crosswalks),
        aliases=MappingProxyType(aliases),
        units=MappingProxyType(units),
        generation=generation,
    )


def _read_manifest(path: Path) -> dict:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TerminologyError(f"cannot read crosswalk manifest {path}: {exc}") from None
    if not isinstance(document, dict):
        raise TerminologyError(f"{path}: a crosswalk manifest is a YAML mapping")
    if document.get("format", FORMAT) != FORMAT:
        raise TerminologyError(f"{path}: format {document.get('format')!r} is not supported (this server reads format {FORMAT})")
    return document


def _unique(name: str, seen: dict, manifest: Path) -> None:
    if name in seen:
        raise TerminologyError(f"{manifest}: {name!r} is defined twice")


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(columns) - set(reader.fieldnames or ())
            if missing:
                raise TerminologyError(f"{path}: missing columns {sorted(missing)} (expected {','.join(columns)})")
            return [(number, {k: (v or "").strip() for k, v in row.items() if k}) for number, row in enumerate(reader, start=2)]
    except OSError as exc:
        raise TerminologyError(f"cannot read {path}: {exc}") from None


def _crosswalk(manifest: Path, name: str, entry: dict, version: str, aliases: dict) -> Crosswalk:
    if not isinstance(entry, dict) or not entry.get("file") or not entry.get("local_system"):
        raise TerminologyError(f"{manifest}: crosswalk {name!r} needs 'file' and 'local_system'")
    table_name = entry.get("aliases")
    if table_name is not None and table_name not in aliases:
        raise TerminologyError(f"{manifest}: crosswalk {name!r} uses unknown aliases {table_name!r}")
    alias = aliases.get(table_name, {})
    path = manifest.parent / entry["file"]
    rows = []
    for number, row in _rows(path, CROSSWALK_COLUMNS):
        where = f"{path}:{number}"
        if not row["local_code"]:
            raise TerminologyError(f"{where}: local_code is empty")
        equivalence = row["equivalence"] or ("equivalent" if row["target_code"] else "unmatched")
        if equivalence not in EQUIVALENCES:
            raise TerminologyError(f"{where}: equivalence {equivalence!r} is not one of {', '.join(EQUIVALENCES)}")
        system = alias.get(row["target_system"], row["target_system"]) or None
        if equivalence != "unmatched" and not (system and row["target_code"]):
            raise TerminologyError(f"{where}: a {equivalence} row needs target_system and target_code")
        if system and ":" not in system:
            raise TerminologyError(f"{where}: target_system {system!r} is neither a URI nor a known alias")
        rows.append(
            CrosswalkRow(
                row["local_code"],
                row["local_display"] or None,
                system,
                row["target_code"] or None,
                row["target_display"] or None,
                equivalence,
            )
        )
    url = entry.get("url") or f"urn:fhir-facade:conceptmap:{name}"
    return Crosswalk.build(name, entry.get("title", name), entry["local_system"], str(entry.get("version", version)), url, rows)


def _units(manifest: Path, name: str, entry: dict) -> UnitMap:
    if not isinstance(entry, dict) or not entry.get("file"):
        raise TerminologyError(f"{manifest}: units {name!r} needs 'file'")
    path = manifest.parent / entry["file"]
    units = {}
    for number, row in _rows(path, UNIT_COLUMNS):
        if not row["legacy_unit"] or not row["ucum_code"]:
            raise TerminologyError(f"{path}:{number}: legacy_unit and ucum_code are required")
        factor = None
        if row["convert_to"]:
            try:
                factor = float(row["factor"])
            except ValueError:
                raise TerminologyError(f"{path}:{number}: convert_to needs a numeric factor") from None
        units[row["legacy_unit"]] = UnitMapping(
            row["legacy_unit"], row["ucum_code"], row["ucum_display"] or row["ucum_code"], row["convert_to"] or None, factor
        )
    return UnitMap(name, entry.get("title", name), MappingProxyType(units))
