"""_include, _revinclude, _summary and $everything answer the same from PostgreSQL and MariaDB as from SQLite."""

from __future__ import annotations

import orjson
import pytest

from support.fhir_client import walk

SEARCHES = [
    "/fhir/Observation?category=laboratory&_include=Observation:patient&_count=50",
    "/fhir/Patient?_count=4&_revinclude=Observation:patient&_sort=_lastUpdated",
    "/fhir/Observation?category=vital-signs&_summary=true&_count=60",
    "/fhir/Patient?_elements=gender&_sort=-_lastUpdated&_count=30",
]


def _entries(client, url: str) -> list[dict]:
    return [entry for page in walk(client, url)[:20] for entry in page.get("entry", [])]


def _everything_url(client) -> str:
    patient = client.get("/fhir/Observation?category=laboratory&_count=1").get_json()["entry"][0]["resource"]["subject"]["reference"]
    return f"/fhir/{patient}/$everything?_count=40"


def _same(one, other, url: str) -> None:
    expected = _entries(other, url)
    assert any(e["search"]["mode"] == "match" for e in expected), url
    assert orjson.dumps(_entries(one, url)) == orjson.dumps(expected), url


@pytest.mark.postgres
@pytest.mark.parametrize("url", SEARCHES)
def test_postgres_same_as_sqlite(pg, lite, url):
    _same(pg, lite, url)


@pytest.mark.postgres
def test_postgres_everything_same_as_sqlite(pg, lite):
    _same(pg, lite, _everything_url(lite))


@pytest.mark.mariadb
@pytest.mark.parametrize("url", SEARCHES)
def test_mariadb_same_as_sqlite(clients, url):
    mariadb, sqlite = clients
    _same(mariadb, sqlite, url)


@pytest.mark.mariadb
def test_mariadb_everything_same_as_sqlite(clients):
    mariadb, sqlite = clients
    _same(mariadb, sqlite, _everything_url(sqlite))
