"""The same demo mapping served from MariaDB gives the same FHIR JSON as from SQLite.

Dialect differences (string concatenation for ids, LIMIT inside UNION members, NULL
ordering, LIKE escaping) are SQLAlchemy's job, not the mapping author's.
"""

from __future__ import annotations

import orjson
import pytest

from support.fhir_client import search_resources

SEARCHES = [
    "/fhir/Patient?_count=9",
    "/fhir/Patient?name=jo&_count=500",
    "/fhir/Patient?birthdate=lt1950&_sort=-birthdate&_count=7",
    "/fhir/Patient?gender=unknown,female&family:contains=son&_count=50",
    "/fhir/Observation?code=http://loinc.org|2345-7&_count=100",
    "/fhir/Observation?category=vital-signs&date=ge2024-01-01&_count=250",
    "/fhir/Observation?status=preliminary,corrected&_sort=date&_count=40",
    "/fhir/Observation?category=social-history&_count=30",
    "/fhir/Encounter?date=ge2025-01-01&_count=60",
    "/fhir/Encounter?date=lt2022&class=AMB&_count=60",
    "/fhir/Condition?category=problem-list-item,encounter-diagnosis&_count=200",
    "/fhir/MedicationRequest?intent=order&status=active,completed&_count=50",
    "/fhir/AllergyIntolerance?clinical-status=active&_count=20",
    "/fhir/Immunization?date=ge2024&_count=30",
    "/fhir/Procedure?status=completed&_count=20",
    "/fhir/DiagnosticReport?category=LAB&_count=50",
    "/fhir/Provenance?_count=300",
    "/fhir/Practitioner?_count=7",
    "/fhir/Organization",
    "/fhir/Location",
    "/fhir/Medication",
]


@pytest.mark.mariadb
@pytest.mark.parametrize("path", SEARCHES)
def test_same_resources_as_sqlite_on_every_page(clients, path):
    mariadb, sqlite = clients
    from_mariadb = search_resources(mariadb, path)
    from_sqlite = search_resources(sqlite, path)
    assert from_sqlite, path
    assert orjson.dumps(from_mariadb) == orjson.dumps(from_sqlite)


@pytest.mark.mariadb
def test_reads_match(clients):
    mariadb, sqlite = clients
    for path in ("/fhir/Patient?_count=5", "/fhir/Observation?category=vital-signs&_count=5"):
        for entry in sqlite.get(path).get_json()["entry"]:
            resource = entry["resource"]
            url = f"/fhir/{resource['resourceType']}/{resource['id']}"
            assert mariadb.get(url).get_json() == sqlite.get(url).get_json() == resource
