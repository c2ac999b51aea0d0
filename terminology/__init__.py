"""Terminology: local legacy codes ↔ standard code systems (LOINC, SNOMED CT, RxNorm, ICD-10-CM, CVX, UCUM).

    files.py      reading a crosswalk set (manifest YAML + CSV files) into a Snapshot
    model.py      the immutable Snapshot: crosswalks, aliases, unit maps, with precomputed lookups
    registry.py   the live Terminology: current snapshot, reloaded when its files change
    resources.py  FHIR ConceptMap / CodeSystem / ValueSet resources and $translate / $lookup answers
    coverage.py   the coverage report: how many legacy rows each coded element's codes cover
"""
