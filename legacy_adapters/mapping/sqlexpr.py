"""Small helpers for building SQL predicates that fold constants at compile time.

A predicate that is known to be false without asking the database (a vital-sign
branch whose fixed LOINC code cannot match) removes its whole branch from the
query instead of sending ``WHERE 1 = 0`` to the server.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement, False_, True_
from sqlalchemy.sql.visitors import InternalTraversal

TRUE = sa.true()
FALSE = sa.false()


def is_false(expr: ColumnElement) -> bool:
    return isinstance(expr, False_)


def is_true(expr: ColumnElement) -> bool:
    return isinstance(expr, True_)


def all_of(*exprs: ColumnElement) -> ColumnElement:
    kept = []
    for expr in exprs:
        if is_false(expr):
            return FALSE
        if not is_true(expr):
            kept.append(expr)
    if not kept:
        return TRUE
    return kept[0] if len(kept) == 1 else sa.and_(*kept)


def any_of(*exprs: ColumnElement) -> ColumnElement:
    kept = []
    for expr in exprs:
        if is_true(expr):
            return TRUE
        if not is_false(expr):
            kept.append(expr)
    if not kept:
        return FALSE
    return kept[0] if len(kept) == 1 else sa.or_(*kept)


def negate(expr: ColumnElement) -> ColumnElement:
    if is_true(expr):
        return FALSE
    if is_false(expr):
        return TRUE
    return sa.not_(expr)


def present(column: ColumnElement) -> ColumnElement:
    """Legacy 'has a value': not NULL and not the empty string."""
    if isinstance(column.type, sa.String):
        return sa.and_(column.isnot(None), column != "")
    return column.isnot(None)


def as_text(column: ColumnElement) -> ColumnElement:
    return column if isinstance(column.type, sa.String) else sa.cast(column, sa.String)


def python_type(expr: ColumnElement) -> type | None:
    """The Python type a column's values come back as, when the type says."""
    try:
        return expr.type.python_type
    except NotImplementedError:
        return None


class FewPass(ColumnElement):
    """A comparison few rows pass, said so to SQLite's planner (``likelihood(…, 0.001)``; plain
    elsewhere). A keyset page's bound on a table's primary key is one: without the hint, SQLite
    expects a third of a big table after the cursor and builds a Bloom filter over every joined
    table before the first row, each page, a cost that grows with the database (20 ms a page at
    100,000 patients, against 2 ms for the rows). It still seeks the key's index."""

    inherit_cache = True
    # Untyped, not Boolean: engines without a boolean type would be sent ``likelihood(…) = 1``,
    # which the planner no longer sees through to the key.
    type = sa.types.NullType()
    _traverse_internals = [("comparison", InternalTraversal.dp_clauseelement)]

    def __init__(self, comparison: ColumnElement):
        self.comparison = comparison


@compiles(FewPass)
def _plain(element: FewPass, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.comparison, **kw)


@compiles(FewPass, "sqlite")
def _likelihood(element: FewPass, compiler: Any, **kw: Any) -> str:
    return "likelihood(" + compiler.process(element.comparison, **kw) + ", 0.001)"
