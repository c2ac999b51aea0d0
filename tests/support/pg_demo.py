"""The demo legacy database loaded into its own PostgreSQL schema of the shared ``test`` database.

Other test suites use the same database, so the demo tables live in a schema of this test
run's own (named after its process) and the façade reaches them through ``search_path`` in
the URL's ``options``. Loading takes about a second, once per run; the root conftest drops
the schema when the run ends (:func:`drop_demo_schemas`), so nothing is left behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import sqlalchemy as sa

from legacy_adapters.sources.demo import generate as generate_module
from legacy_adapters.sources.demo import schema as schema_module
from legacy_adapters.sources.demo.generate import DEMO_SEED, generate

PG_DEMO_PATIENTS = 200
_LOCK_KEY = 0x0F41_FACA  # pg_advisory_lock key: only loaders of this schema take it


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` (merged with any options already there)."""
    parsed = sa.engine.make_url(url)
    existing = parsed.query.get("options")
    existing = [existing] if isinstance(existing, str) else list(existing or ())
    options = " ".join([*existing, f"-csearch_path={schema}"])
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _fingerprint(patients: int, seed: int) -> str:
    digest = hashlib.sha256(f"{patients}:{seed}".encode())
    for module in (generate_module, schema_module):
        digest.update(Path(module.__file__).read_bytes())
    return f"fhir-facade demo {digest.hexdigest()}"


# This run's own: concurrent runs (another checkout, another worker) never load or drop each other's.
DEMO_SCHEMA = f"fhir_facade_demo_{os.getpid()}"
_loaded: set[tuple[str, str]] = set()  # (admin URL, schema) this process created


def ensure_demo_schema(admin_url: str, schema: str = DEMO_SCHEMA, patients: int = PG_DEMO_PATIENTS, seed: int = DEMO_SEED) -> str:
    """Load the demo data into ``schema`` unless it already holds exactly this data; return its URL."""
    url = with_search_path(admin_url, schema)
    marker = _fingerprint(patients, seed)
    admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
    try:
        with admin.connect() as lock:
            lock.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            try:
                current = lock.execute(
                    sa.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :s"), {"s": schema}
                ).scalar()
                lock.commit()
                if current != marker:
                    _load(admin, url, schema, patients, seed, marker)
                _loaded.add((admin_url, schema))
            finally:
                lock.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                lock.commit()
    finally:
        admin.dispose()
    return url


def forget_demo_schema(admin_url: str, schema: str = DEMO_SCHEMA) -> None:
    """Drop the reuse marker, so the next test run reloads the schema (call it if a test changed the data)."""
    admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            quoted = admin.dialect.identifier_preparer.quote_identifier(schema)
            if conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar():
                conn.exec_driver_sql(f"COMMENT ON SCHEMA {quoted} IS NULL")
    finally:
        admin.dispose()


def _load(admin: sa.Engine, url: str, schema: str, patients: int, seed: int, marker: str) -> None:
    quoted = admin.dialect.identifier_preparer.quote_identifier(schema)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {quoted}")
    writer = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        generate(writer, patients=patients, seed=seed)
    finally:
        writer.dispose()
    with admin.begin() as conn:  # the marker goes last: a half-loaded schema is never reused
        # psycopg2 interpolates parameters client-side, so a literal works where the server takes none
        conn.exec_driver_sql(f"COMMENT ON SCHEMA {quoted} IS %(m)s", {"m": marker})


def table_digest(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every demo table's rows in primary-key order."""
    out = {}
    with engine.connect() as conn:
        for table in schema_module.metadata.sorted_tables:
            digest = hashlib.sha256()
            count = 0
            for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
                count += 1
            out[table.name] = (count, digest.hexdigest())
    return out


def drop_demo_schemas() -> None:
    """Drop every demo schema this process loaded (at the end of the test run)."""
    for admin_url, schema in sorted(_loaded):
        admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
        try:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {admin.dialect.identifier_preparer.quote_identifier(schema)} CASCADE")
        finally:
            admin.dispose()
    _loaded.clear()
