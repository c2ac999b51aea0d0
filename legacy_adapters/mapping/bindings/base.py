"""What every binding shares: how a column reference is resolved, and ``:missing``."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.sql.elements import ColumnElement

from facade.search.params import MissingValue, SearchClause
from legacy_adapters.mapping.sqlexpr import negate

Resolve = Callable[[str], ColumnElement]


def missing(clause: SearchClause, present: ColumnElement) -> ColumnElement | None:
    """``param:missing=true|false`` given what "has a value" means for the binding; None when
    the clause is not a ``:missing`` one (R4 search §3.1.1.4.9)."""
    if clause.modifier != "missing":
        return None
    value = clause.values[0]
    assert isinstance(value, MissingValue)
    return negate(present) if value.missing else present


class SearchBinding:
    """What the compiler asks of every binding: ``predicate(clause)`` and ``sort_key()``; and of
    reference bindings, the target ids ``_include`` reads (``include_column()``, None elsewhere)."""

    several_per_row = False  # include_column() joins several ids in one text column (a collection)

    def predicate(self, clause: SearchClause) -> ColumnElement:
        raise NotImplementedError

    def sort_key(self) -> ColumnElement:
        raise NotImplementedError

    def include_column(self) -> ColumnElement | None:
        return None
