"""The state database's tables appear once, even when workers race to create them."""

from __future__ import annotations

import sqlalchemy as sa

import facade.audit.store  # noqa: F401 - declares the audit tables on the shared metadata
from facade.state import StateStore, metadata


def test_a_worker_that_loses_the_creation_race_checks_again(tmp_path, monkeypatch):
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    real_create_all = sa.MetaData.create_all
    calls = []

    def racing(self, bind, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # another worker creates the tables between our check and our CREATE
            real_create_all(self, bind, **kwargs)
            raise sa.exc.OperationalError("CREATE TABLE audit_record", {}, Exception("table audit_record already exists"))
        return real_create_all(self, bind, **kwargs)

    monkeypatch.setattr(sa.MetaData, "create_all", racing)
    store.create_tables()
    assert len(calls) == 2
    assert set(metadata.tables) <= set(sa.inspect(store.engine).get_table_names())


def test_workers_starting_together_all_get_their_tables(tmp_path):
    import threading

    import facade.smart.store  # noqa: F401 - declares the authorization server's tables too

    for n in range(10):
        stores = [StateStore(f"sqlite:///{tmp_path / f'{n}.sqlite'}") for _ in range(4)]
        errors: list[Exception] = []

        def create(store: StateStore) -> None:
            try:
                store.create_tables()
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=create, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert set(metadata.tables) <= set(sa.inspect(stores[0].engine).get_table_names())


def _earlier_version(engine: sa.Engine, missing: dict[str, set[str]]) -> None:
    """The state tables as an earlier version made them: without the ``missing`` columns (and
    without the indexes over them)."""
    old = sa.MetaData()
    for table in metadata.sorted_tables:
        dropped = missing.get(table.name, set())
        columns = [
            sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key) for c in table.columns if c.name not in dropped
        ]
        indexes = [
            sa.Index(index.name, *[c.name for c in index.columns], unique=index.unique)
            for index in table.indexes
            if not {c.name for c in index.columns} & dropped
        ]
        sa.Table(table.name, old, *columns, *indexes)
    old.create_all(engine)


def test_tables_of_an_earlier_version_get_the_columns_added_since(tmp_path):
    import facade.bulk.jobs  # noqa: F401 - declares the export jobs' table
    from facade.audit.store import AuditStore
    from facade.bulk.jobs import JobStore

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    engine = sa.create_engine(url)
    _earlier_version(engine, {"bulk_job": {"polled_at"}, "audit_record": {"writer", "wseq"}})
    store = StateStore(url)
    AuditStore(store.engine, delivery="commit").create()  # as a worker does at its first request
    inspector = sa.inspect(engine)
    assert "polled_at" in {c["name"] for c in inspector.get_columns("bulk_job")}
    assert {"writer", "wseq"} <= {c["name"] for c in inspector.get_columns("audit_record")}
    assert "audit_record_writer_wseq" in {i["name"] for i in inspector.get_indexes("audit_record")}
    jobs = JobStore(store.engine)
    job = jobs.create("client", "http://x/fhir/$export", {}, {}, limit=5)
    assert job is not None and jobs.poll(job.id, 10) is True and jobs.poll(job.id, 10) is False  # polled_at is used
    store.create_tables()  # again: nothing left to add
    engine.dispose()
    store.dispose()
