"""Static row filters of a source, a join's collection or a variant (``where:`` in a mapping).

``{column: p.del_flg, equals: N}``, ``not_equals``, ``in``, ``not_in``, ``is_null``,
``greater_than``, ``at_least``, ``less_than``; ``{any: [filters...]}`` holds when one of
its filters does. Comparisons are exact (columns.exact_in), as every search is.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from legacy_adapters.mapping.columns import UuidText, exact_in
from legacy_adapters.mapping.errors import MappingError

Resolve = Callable[[str], ColumnElement]


def row_filter(item: dict, resolve: Resolve) -> ColumnElement:
    """Static row filters: ``{column: p.del_flg, equals: N}``, ``not_equals``, ``in``, ``not_in``, ``is_null``,
    ``greater_than``, ``at_least``, ``less_than``; ``{any: [filters...]}`` holds when one of its filters does."""
    if "any" in item:
        if not item["any"]:
            raise MappingError(f"filter {item!r}: 'any' needs a list of filters")
        return sa.or_(*(row_filter(inner, resolve) for inner in item["any"]))
    column = resolve(item["column"])
    if "equals" in item:
        return exact_in(column, [item["equals"]])
    if "not_equals" in item:
        return sa.or_(column.is_(None), sa.not_(exact_in(column, [item["not_equals"]])))
    if "in" in item:
        return exact_in(column, item["in"])
    if "not_in" in item:
        return sa.or_(column.is_(None), sa.not_(exact_in(column, item["not_in"])))
    if "is_null" in item:
        if isinstance(column.type, UuidText):  # "{x.uuid:uuid}": sixteen zero bytes are no uuid either
            empty = sa.or_(column.is_(None), column == sa.bindparam(None, bytes(16), type_=column.type))
            return empty if item["is_null"] else sa.not_(empty)
        return column.is_(None) if item["is_null"] else column.isnot(None)
    if "greater_than" in item:
        return column > item["greater_than"]
    if "at_least" in item:
        return column >= item["at_least"]
    if "less_than" in item:
        return column < item["less_than"]
    raise MappingError(f"filter {item!r} needs equals, not_equals, in, not_in, is_null, greater_than, at_least, less_than or any")
