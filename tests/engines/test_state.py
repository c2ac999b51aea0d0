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
