"""The façade's own state database: what every worker and host must share.

    store.py    StateStore (the engine, every table created once at start-up), WriterLock
    tables.py   tables that are contracts between packages (the revocation list)

Feature packages declare their own tables on :data:`metadata` (facade/smart/store.py,
facade/audit/store.py).
"""

from facade.state.store import StateStore, WriterLock, create_state_tables, metadata

__all__ = ["StateStore", "WriterLock", "create_state_tables", "metadata"]
