"""Tests for the deterministic demo legacy-database generator."""

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from legacy_adapters.sources.demo.generate import DEMO_SEED, generate
from legacy_adapters.sources.demo.schema import metadata


def _digest(engine) -> dict[str, str]:
    """Hash every table's rows in primary-key order.

    Numbers are normalised to float so a SQLite file (which stores 120.0 as 120)
    and a PostgreSQL database compare equal.
    """
    digests = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            h = hashlib.sha256()
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                norm = tuple(float(v) if isinstance(v, (int, float)) else v for v in row)
                h.update(repr(norm).encode())
            digests[table.name] = h.hexdigest()
    return digests


def _sqlite_digest(path) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        return _digest(engine)
    finally:
        engine.dispose()


def _rows(path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def _one(path, sql: str):
    return _rows(path, sql)[0][0]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """The default-size demo database, generated once for this module."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    started = time.perf_counter()
    counts = generate(path)
    return path, counts, time.perf_counter() - started


def test_same_seed_gives_identical_content(tmp_path):
    first = generate(tmp_path / "a.sqlite", patients=50)
    second = generate(tmp_path / "b.sqlite", patients=50)
    generate(tmp_path / "c.sqlite", patients=50, seed=DEMO_SEED + 1)

    assert first == second
    assert _sqlite_digest(tmp_path / "a.sqlite") == _sqlite_digest(tmp_path / "b.sqlite")
    assert (tmp_path / "a.sqlite").read_bytes() == (tmp_path / "b.sqlite").read_bytes()
    assert _sqlite_digest(tmp_path / "a.sqlite") != _sqlite_digest(tmp_path / "c.sqlite")


def test_same_seed_gives_identical_content_in_another_process(tmp_path):
    """Python salts string hashes per process: nothing generated may depend on a set's order."""
    for name, salt in (("a", "1"), ("b", "2")):
        code = f"from legacy_adapters.sources.demo.generate import generate; generate({str(tmp_path / name)!r}, patients=120)"
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": salt})
    assert _sqlite_digest(tmp_path / "a") == _sqlite_digest(tmp_path / "b")


def test_replaces_existing_file_without_leftovers(tmp_path):
    path = tmp_path / "demo.sqlite"
    path.write_bytes(b"an older demo database")

    counts = generate(path, patients=5)

    assert os.listdir(tmp_path) == ["demo.sqlite"]  # the temp file was renamed into place
    assert _one(path, "SELECT count(*) FROM pt_master") == counts["pt_master"] == 5
    assert _one(path, "PRAGMA journal_mode") == "delete"  # generation-time pragmas don't stick


def test_default_size_counts_and_volumes(demo_db):
    path, counts, elapsed = demo_db

    assert elapsed < 60  # generous; typically about a second
    assert set(counts) == {t.name for t in metadata.sorted_tables}
    for table, count in counts.items():
        assert _one(path, f"SELECT count(*) FROM {table}") == count
    assert counts["pt_master"] == 1000
    assert counts["staff"] == 40
    assert counts["lab_test_cd"] >= 16

    vital_values = _one(
        path,
        """SELECT sum((pulse IS NOT NULL) + (bp_sys IS NOT NULL)
        + (bp_dia IS NOT NULL) + (resp_rate IS NOT NULL) + (temp_f IS NOT NULL)
        + (wt_lb IS NOT NULL) + (ht_in IS NOT NULL) + (spo2 IS NOT NULL)) FROM vitals""",
    )
    assert 30 <= (counts["lab_result"] + vital_values) / 1000 <= 60

    chronic_labs = _one(path, "SELECT count(*) FROM lab_result WHERE pt_seq = 1")
    chronic_vitals = _one(path, "SELECT count(*) FROM vitals WHERE pt_seq = 1")
    assert chronic_labs >= 2000 and chronic_vitals >= 500


def test_legacy_traits_are_present(demo_db):
    path, _, _ = demo_db

    # junk dates in each legacy format
    assert _one(path, "SELECT count(*) FROM pt_master WHERE dob IN ('', '00000000')") > 0
    assert _one(path, "SELECT count(*) FROM enc_visit WHERE adm_dt = '0000-00-00 00:00:00'") > 0
    assert _one(path, "SELECT count(*) FROM lab_result WHERE collect_dttm IN ('', '00000000000000')") > 0
    assert _one(path, "SELECT count(*) FROM vitals WHERE taken_dttm IN ('', '00000000000000')") > 0

    # soft deletes everywhere, and merged duplicates pointing at a live survivor
    for table in ("pt_master", "enc_visit", "lab_result", "rx_order"):
        assert _one(path, f"SELECT count(*) FROM {table} WHERE del_flg = 'Y'") > 0
    merges = _rows(
        path,
        """SELECT d.del_flg, s.del_flg, s.merged_to_seq, d.last_nm = s.last_nm
        FROM pt_master d JOIN pt_master s ON s.pt_seq = d.merged_to_seq""",
    )
    assert merges and all(m == ("N", "N", None, 1) for m in merges)

    sexes = {s for (s,) in _rows(path, "SELECT DISTINCT sex_cd FROM pt_master")}
    assert {"M", "F", "U"} <= sexes <= {"M", "F", "U", None}
    assert _one(path, "SELECT count(*) FROM pt_master WHERE last_nm <> upper(last_nm)") == 0

    # local-only lab codes, still used by results
    unmapped = {c for (c,) in _rows(path, "SELECT test_cd FROM lab_test_cd WHERE loinc_cd IS NULL")}
    assert len(unmapped) >= 2
    assert {"POS", "NEG"} <= {v for (v,) in _rows(path, "SELECT result_val FROM lab_result WHERE test_cd = 'UDS'")}
    assert _one(path, "SELECT count(*) FROM lab_result WHERE result_val LIKE '<%' OR result_val LIKE '>%'") > 0
    assert {s for (s,) in _rows(path, "SELECT DISTINCT res_status FROM lab_result")} == {"F", "P", "C", "X"}

    # wide vitals: many measurements per row, height usually missing
    full = _one(
        path, "SELECT count(*) FROM vitals WHERE pulse IS NOT NULL AND bp_sys IS NOT NULL AND temp_f IS NOT NULL AND wt_lb IS NOT NULL"
    )
    no_height = _one(path, "SELECT avg(ht_in IS NULL) FROM vitals")
    assert full > 0 and no_height > 0.5

    # problem code strings in several styles
    codes = [c for (c,) in _rows(path, "SELECT dx_codes FROM prob_list")]
    assert any(";SNOMED-CT:" in c for c in codes)
    assert any(c.startswith("ICD10:") and ";" not in c for c in codes)
    assert any(c.startswith("LOCAL:") for c in codes)


@pytest.mark.postgres
def test_postgres_matches_sqlite(tmp_path, postgres_url):
    """Same seed, same rows on PostgreSQL, written into a private schema.

    ``postgres_url`` skips with a reason when PostgreSQL is not reachable, and fails under CI=true.
    """
    schema = f"demo_generator_test_{os.getpid()}"
    admin = create_engine(postgres_url)
    engine = create_engine(make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        pg_counts = generate(engine, patients=30)
        generate(engine, patients=30)  # re-running drops and recreates the tables
        sqlite_counts = generate(tmp_path / "demo.sqlite", patients=30)
        assert pg_counts == sqlite_counts
        assert _digest(engine) == _sqlite_digest(tmp_path / "demo.sqlite")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
