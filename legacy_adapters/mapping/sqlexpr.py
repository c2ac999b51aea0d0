"""Small helpers for building SQL predicates that fold constants at compile time.

A predicate that is known to be false without asking the database (a vital-sign
branch whose fixed LOINC code cannot match) removes its whole branch from the
query instead of sending ``WHERE 1 = 0`` to the server.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement, False_, True_

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
