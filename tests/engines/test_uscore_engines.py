"""The US Core types of the demo's later tables give byte-identical JSON from PostgreSQL, MariaDB
and SQLite: note text, narratives, UDIs, names and decimals included."""

from __future__ import annotations

import orjson
import pytest

from support.fhir_client import search_resources

SEARCHES = [
    "/fhir/DocumentReference?category=clinical-note&date=ge2025-06&_count=100",
    "/fhir/DocumentReference?type=http://loinc.org|18842-5&_count=50",
    "/fhir/DiagnosticReport?category=http://loinc.org|LP29684-5,http://loinc.org|LP29708-2,LP7839-6&date=ge2024&_count=100",
    "/fhir/DiagnosticReport?code=http://loinc.org|11526-1&_count=50",
    "/fhir/CarePlan?category=assess-plan&_count=50",
    "/fhir/CareTeam?status=active,inactive&_count=50",
    "/fhir/CareTeam?role=http://snomed.info/sct|768730001,309343006&_count=20",
    "/fhir/Observation?code=http://loinc.org|59576-9,http://loinc.org|77606-2,http://loinc.org|8289-1&_count=20",
    "/fhir/Goal?lifecycle-status=active&_count=50",
    "/fhir/Device?_count=20",
    "/fhir/Coverage?_count=50",
    "/fhir/MedicationDispense?status=completed&whenhandedover=ge2025&_count=100",
    "/fhir/ServiceRequest?category=http://snomed.info/sct|363679005&_count=50",
    "/fhir/Specimen?collected=ge2025&_count=100",
    "/fhir/RelatedPerson?_count=50",
    "/fhir/PractitionerRole?_count=10",
    "/fhir/Organization?identifier=urn:fhir-facade:demo:payer|",
]


def _same(one, other, path: str) -> None:
    left, right = search_resources(one, path), search_resources(other, path)
    assert right, path
    assert orjson.dumps(left, option=orjson.OPT_SORT_KEYS) == orjson.dumps(right, option=orjson.OPT_SORT_KEYS)


@pytest.mark.mariadb
@pytest.mark.parametrize("path", SEARCHES)
def test_mariadb_answers_as_sqlite(clients, path):
    _same(*clients, path)


@pytest.mark.postgres
@pytest.mark.parametrize("path", SEARCHES)
def test_postgres_answers_as_sqlite(pg, lite, path):
    _same(pg, lite, path)
