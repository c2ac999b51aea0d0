"""Terminology: local legacy codes ↔ standard code systems (LOINC, SNOMED CT, RxNorm, ICD-10-CM, CVX, UCUM).

The ground floor: this package imports nothing else of the project. What reads the legacy
database (code tables, coverage) lives in legacy_adapters; what serves FHIR terminology
resources lives in facade/core/terminology.py.

    files.py      reading a crosswalk set (manifest YAML + CSV files) into a Snapshot
    model.py      the immutable Snapshot: crosswalks, aliases, unit maps, with precomputed lookups
    registry.py   the live Terminology: current snapshot, reloaded when its files change
"""

from terminology.files import TerminologyError
from terminology.model import Crosswalk, CrosswalkRow, Snapshot
from terminology.registry import Terminology

__all__ = ["Crosswalk", "CrosswalkRow", "Snapshot", "Terminology", "TerminologyError"]
