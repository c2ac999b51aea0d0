"""Crosswalk searches compare local codes exactly on MariaDB, whose default collations ignore
case and trailing spaces: a LOINC search never finds a row stored as 'glu', and the local
system finds 'glu' without 'GLU'."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from support.fhir_client import q, search_ids
from support.mariadb_demo import mariadb_demo

LOINC = "http://loinc.org"
LAB = "urn:fhir-facade:demo:lab-test"

pytestmark = pytest.mark.mariadb


@pytest.fixture(scope="module")
def demo(mariadb_url):
    with mariadb_demo(mariadb_url, "fhir_facade_test_xwalk", patients=20) as url:
        yield _add_a_lowercase_code_and_serve(url)


def _add_a_lowercase_code_and_serve(url: str) -> tuple:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    odd = str(uuid.UUID(int=7))
    with engine.begin() as connection:  # the test's own copy of the legacy data, changed before the façade reads it
        columns = [c for c in sa.inspect(connection).get_columns("lab_result") if c["name"] not in ("res_id", "res_guid", "test_cd")]
        names = ", ".join(c["name"] for c in columns)
        next_id = connection.execute(sa.text("SELECT MAX(res_id) + 1 FROM lab_result")).scalar()
        connection.exec_driver_sql(
            f"INSERT INTO lab_result (res_id, res_guid, test_cd, {names}) SELECT {next_id}, '{odd}', 'glu', {names} FROM lab_result r "
            "WHERE r.test_cd = 'GLU' AND r.del_flg <> 'Y' AND EXISTS (SELECT 1 FROM pt_master p WHERE p.pt_seq = r.pt_seq AND p.del_flg <> 'Y') "
            "ORDER BY r.res_id LIMIT 1"
        )
        glu = {
            row[0]
            for row in connection.execute(
                sa.text(
                    "SELECT r.res_guid FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq "
                    "WHERE BINARY r.test_cd = 'GLU' AND r.del_flg <> 'Y' AND p.del_flg <> 'Y'"
                )
            )
        }
        # The collation really is forgiving: the weakness this guards against.
        assert (
            connection.execute(sa.text("SELECT COUNT(*) FROM lab_result WHERE test_cd = 'GLU' AND res_guid = :g"), {"g": odd}).scalar() == 1
        )
    engine.dispose()
    client = create_app(Settings(auth_mode="off", database_url=url, base_url="http://testserver/fhir")).test_client()
    return client, odd, glu


def test_crosswalk_searches_are_exact(demo):
    client, odd, glu = demo
    assert glu
    assert set(search_ids(client, f"/fhir/Observation?code={q(LOINC + '|2345-7')}&_count=1000")) == glu
    assert set(search_ids(client, f"/fhir/Observation?code={q(LAB + '|GLU')}&_count=1000")) == glu
    assert search_ids(client, f"/fhir/Observation?code={q(LAB + '|glu')}&_count=1000") == [odd]
