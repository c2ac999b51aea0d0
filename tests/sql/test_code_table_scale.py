"""Code tables of millions of rows cost no memory: lookups by system|code are answered in SQL.

An OMOP-style ``concept`` table of two million rows, in which one code exists in three
vocabularies, behind a few legacy rows that refer to concepts by id. Searching and reading
never bring the table into the process: the Python memory the whole first search allocates
(binding the mapping, resolving the code, building the page) stays a few megabytes, where a copy
of the table would take hundreds.
"""

from __future__ import annotations

import random
import tracemalloc

import pytest
import sqlalchemy as sa

from facade.search.parser import parse_search
from legacy_adapters.engines import create_legacy_engine, sqlite_url
from legacy_adapters.mapping import yamlpos
from legacy_adapters.mapping.loader import parse_mapping
from legacy_adapters.sql_adapter import SqlAdapter

CONCEPTS = 2_000_000
VOCABULARIES = {0: "LOINC", 1: "SNOMED", 2: "ICD10CM"}
SYSTEMS = {"LOINC": "http://loinc.org", "SNOMED": "http://snomed.info/sct", "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm"}

MAPPING = """\
mapping: scale
code_tables:
  concept:
    table: concept
    key: concept_id
    code: concept_code
    display: concept_name
    system: {column: vocabulary_id, map: {LOINC: http://loinc.org, SNOMED: http://snomed.info/sct, ICD10CM: http://hl7.org/fhir/sid/icd-10-cm}}
    absent: [0]
resources:
  Observation:
    search:
      code: {type: token}
    sources:
      - table: measurement
        alias: m
        id: "{m.measurement_id}"
        resource:
          status: final
          code:
            coding: [{column: m.concept_id, lookup: concept}]
            text: {column: m.source_value}
        search:
          code: {column: m.concept_id, lookup: concept}
"""


@pytest.fixture(scope="module")
def concepts(tmp_path_factory):
    """concept_id x has code 'C<x // 3>' in vocabulary x % 3: every code is in three vocabularies."""
    path = tmp_path_factory.mktemp("scale") / "concepts.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    rng = random.Random(7)
    measurements = [(i, rng.choice([0, rng.randrange(1, 3000)]), f"SRC{i}") for i in range(1, 401)]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE concept (concept_id INTEGER PRIMARY KEY, concept_code TEXT, vocabulary_id TEXT, concept_name TEXT)"
        )
        conn.exec_driver_sql(
            f"""WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {CONCEPTS - 1})
            INSERT INTO concept SELECT x, 'C' || (x / 3), CASE x % 3 WHEN 0 THEN 'LOINC' WHEN 1 THEN 'SNOMED' ELSE 'ICD10CM' END,
            'Concept ' || x FROM n"""
        )
        conn.exec_driver_sql("CREATE INDEX concept_code ON concept (concept_code)")
        conn.exec_driver_sql("CREATE TABLE measurement (measurement_id INTEGER PRIMARY KEY, concept_id INTEGER, source_value TEXT)")
        conn.exec_driver_sql("CREATE INDEX measurement_concept ON measurement (concept_id)")
        conn.exec_driver_sql("INSERT INTO measurement VALUES (?, ?, ?)", measurements)
    engine.dispose()
    return path, measurements


def _adapter(path) -> SqlAdapter:
    return SqlAdapter(parse_mapping(yamlpos.load(MAPPING, "scale.yaml"), "scale.yaml"), create_legacy_engine(sqlite_url(path)))


def _search(adapter: SqlAdapter, token: str) -> list[dict]:
    return adapter.search(
        parse_search("Observation", [("code", token), ("_count", "1000")], adapter.search_params("Observation"))
    ).resources


def test_the_first_search_allocates_megabytes_not_the_table(concepts):
    path, measurements = concepts
    adapter = _adapter(path)
    code = next(f"C{cid // 3}" for _, cid, _ in measurements if cid and cid % 3 == 0)  # a LOINC code some rows hold
    tracemalloc.start()
    try:
        found = _search(adapter, f"http://loinc.org|{code}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = {str(mid) for mid, cid, _ in measurements if cid and cid % 3 == 0 and f"C{cid // 3}" == code}
    assert {r["id"] for r in found} == expected and expected
    assert peak < 8 * 1024 * 1024, f"{peak / 1e6:.1f} MB allocated: the code table must stay in the database"
    adapter.engine.dispose()


def test_the_system_decides_between_codes_of_several_vocabularies(concepts):
    path, measurements = concepts
    adapter = _adapter(path)
    held = {cid for _, cid, _ in measurements if cid}
    code = next(f"C{c // 3}" for c in sorted(held) if len({x for x in held if x // 3 == c // 3}) > 1)  # two vocabularies share it
    by_system = {}
    for vocabulary_index, vocabulary in VOCABULARIES.items():
        by_system[vocabulary] = {str(mid) for mid, cid, _ in measurements if cid and cid % 3 == vocabulary_index and f"C{cid // 3}" == code}
        assert {r["id"] for r in _search(adapter, f"{SYSTEMS[vocabulary]}|{code}")} == by_system[vocabulary]
    assert sum(1 for ids in by_system.values() if ids) >= 2
    assert {r["id"] for r in _search(adapter, code)} == set().union(*by_system.values())  # no system: every vocabulary
    assert _search(adapter, f"http://unitsofmeasure.org|{code}") == []
    # output: the joined concept row gives each coding its own system and display; 0 means no coding
    for resource in _search(adapter, code):
        coding = resource["code"]["coding"][0]
        assert coding["code"] == code and coding["system"] in SYSTEMS.values() and coding["display"].startswith("Concept ")
    unmapped = {str(mid) for mid, cid, _ in measurements if cid == 0}
    assert {r["id"] for r in _search(adapter, "http://loinc.org|C0")} == set()  # concept 0 is 'no code', never matched
    page = adapter.search(parse_search("Observation", [("_id", ",".join(sorted(unmapped)[:5]))], adapter.search_params("Observation")))
    assert page.resources and all("coding" not in r["code"] and r["code"]["text"].startswith("SRC") for r in page.resources)
    missing = adapter.search(
        parse_search("Observation", [("code:missing", "true"), ("_count", "1000")], adapter.search_params("Observation"))
    )
    assert {r["id"] for r in missing.resources} == unmapped
    adapter.engine.dispose()
