"""Legacy code tables held in memory, so a search on a standard code filters the indexed local column.

``Observation?code=http://loinc.org|2345-7`` where labs store 'GLU' and the code table
``lab_test_cd`` says GLU ↔ 2345-7: rather than joining the code table and filtering on its
LOINC column (which leaves the database sorting every glucose row), the façade looks up
{'GLU'} here and sends ``test_cd IN ('GLU')``, which walks the (test_cd, date) index in order.

Code tables are small; they are read on first use and again after ``refresh_seconds``, so
an edit in the legacy system shows up without a restart.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from legacy_adapters.engines import legacy_errors


class CodeTable:
    def __init__(self, engine: sa.Engine, table: sa.FromClause, key: sa.ColumnElement, code: sa.ColumnElement, refresh_seconds: float = 300.0):
        self.engine = engine
        self.statement = sa.select(code, key).select_from(table).where(code.isnot(None), key.isnot(None))
        self.refresh_seconds = refresh_seconds
        self._keys_by_code: dict[str, list] = {}
        self._all_keys: list = []
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _current(self) -> None:
        if time.monotonic() - self._loaded_at < self.refresh_seconds:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < self.refresh_seconds:
                return
            keys_by_code: dict[str, list] = {}
            with legacy_errors(), self.engine.connect() as connection:
                for code, key in connection.execute(self.statement):
                    code = str(code).strip()
                    if code:
                        keys_by_code.setdefault(code, []).append(key)
            self._keys_by_code = keys_by_code
            self._all_keys = sorted({key for keys in keys_by_code.values() for key in keys})
            self._loaded_at = time.monotonic()

    def keys_for(self, code: str) -> list:
        """Local keys whose code-table row carries ``code``."""
        self._current()
        return self._keys_by_code.get(code, [])

    def all_keys(self) -> list:
        """Local keys that have any code at all."""
        self._current()
        return self._all_keys
