"""String parameters: starts-with by default, ``:exact`` and ``:contains``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.search.params import SearchClause, StringValue
from legacy_adapters.mapping.bindings.base import Resolve, SearchBinding, missing
from legacy_adapters.mapping.bindings.first import FirstOfBinding
from legacy_adapters.mapping.columns import exact_in
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.sqlexpr import any_of, present


class StringBinding(SearchBinding):
    """Starts-with, case-insensitive by default; ``normalized: upper`` columns stay index-friendly."""

    def __init__(self, columns: list[ColumnElement], normalized: str | None, byte_ordered: bool = False):
        self.columns = columns
        self.normalized = normalized
        self.byte_ordered = byte_ordered  # text sorts by code point (SQLite's BINARY collation)

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve, byte_ordered: bool = False) -> SearchBinding:
        if "first" in spec:
            return FirstOfBinding([cls.from_spec(item, resolve, byte_ordered) for item in spec["first"]])
        refs = spec.get("columns") or [spec["column"]]
        normalized = spec.get("normalized")
        if normalized not in (None, "upper", "lower"):
            raise MappingError("string binding 'normalized' must be upper or lower")
        return cls([resolve(ref) for ref in refs], normalized, byte_ordered)

    def present(self) -> ColumnElement:
        return any_of(*(present(c) for c in self.columns))

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, self.present())
        if found is not None:
            return found
        texts = [value.value for value in clause.values if isinstance(value, StringValue)]
        return any_of(*(self._match(column, text, clause.modifier) for text in texts for column in self.columns))

    def _match(self, column: ColumnElement, text: str, modifier: str | None) -> ColumnElement:
        if self.normalized:
            needle = text.upper() if self.normalized == "upper" else text.lower()
            if modifier == "exact":
                return exact_in(column, [needle])
            if modifier == "contains":
                return column.contains(needle, autoescape=True)
            prefix = column.startswith(needle, autoescape=True)
            if self.byte_ordered:
                # SQLite's LIKE ignores case and so cannot use an index; a range over byte-ordered
                # text can. (Under linguistic collations a range could drop rows, so only here.)
                return sa.and_(column >= needle, column < needle + "\U0010ffff", prefix)
            return prefix
        if modifier == "exact":
            return exact_in(column, [text])
        if modifier == "contains":
            return column.icontains(text, autoescape=True)
        return column.istartswith(text, autoescape=True)

    def sort_key(self) -> ColumnElement:
        return self.columns[0]
