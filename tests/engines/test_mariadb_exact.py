"""Ids, tokens and :exact match exactly on MariaDB, whose default collations ignore case,
trailing spaces and accents (the demo database, as SQLite and PostgreSQL already answer it).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from support.fhir_client import entry_ids, get_json, q
from support.mariadb_demo import mariadb_demo

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def demo(mariadb_url):
    with mariadb_demo(mariadb_url, "fhir_facade_test_exact", patients=40) as url:
        yield _serve_and_pick_a_patient(url)


def _serve_and_pick_a_patient(url: str) -> tuple:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        guid, mrn, family = connection.execute(
            sa.text("SELECT pt_guid, mrn, last_nm FROM pt_master WHERE del_flg <> 'Y' AND merged_to_seq IS NULL ORDER BY pt_seq LIMIT 1")
        ).one()
        # The collation really is forgiving: the weakness this guards against.
        assert connection.execute(sa.text("SELECT COUNT(*) FROM pt_master WHERE mrn = :m"), {"m": mrn.lower() + " "}).scalar() == 1
    engine.dispose()
    client = create_app(Settings(auth_mode="off", database_url=url, base_url="http://testserver/fhir")).test_client()
    return client, guid, mrn, family


def test_ids_are_exact(demo):
    client, guid, _, _ = demo
    assert get_json(client, f"/fhir/Patient/{guid}")["id"] == guid
    assert entry_ids(get_json(client, f"/fhir/Patient?_id={guid}")) == [guid]
    for other in (guid.upper(), guid + " "):
        assert client.get(f"/fhir/Patient/{q(other)}").status_code == 404
        assert entry_ids(get_json(client, f"/fhir/Patient?_id={q(other)}")) == []
    observation = get_json(client, f"/fhir/Observation?patient={guid}&_count=1")["entry"][0]["resource"]["id"]
    assert client.get(f"/fhir/Observation/{observation.upper()}").status_code == 404
    assert entry_ids(get_json(client, f"/fhir/Observation?patient={guid.upper()}")) == []


def test_tokens_are_exact(demo):
    client, guid, mrn, _ = demo
    assert entry_ids(get_json(client, f"/fhir/Patient?identifier={mrn}")) == [guid]
    for other in (mrn.lower(), mrn + " "):
        assert entry_ids(get_json(client, f"/fhir/Patient?identifier={q(other)}")) == []
    assert entry_ids(get_json(client, f"/fhir/Patient?identifier:not={mrn.lower()}&_id={guid}")) == [guid]


def test_exact_string_is_exact(demo):
    """The demo stores family names upper-cased (``normalized: upper``), so case is folded on
    purpose; a trailing space is still a different name."""
    client, guid, _, family = demo
    assert guid in entry_ids(get_json(client, f"/fhir/Patient?family:exact={q(family.title())}&_count=100"))
    assert guid not in entry_ids(get_json(client, f"/fhir/Patient?family:exact={q(family + ' ')}&_count=100"))
