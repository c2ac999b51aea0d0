"""Reference parameters: the target's id in a column or template, or in a collection's rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.search.params import ReferenceValue, SearchClause
from legacy_adapters.mapping.bindings.base import Resolve, SearchBinding, missing
from legacy_adapters.mapping.bindings.ids import IdTemplate
from legacy_adapters.mapping.columns import UuidText
from legacy_adapters.mapping.sqlexpr import FALSE, all_of, any_of, as_text, is_false, present
from legacy_adapters.mapping.yamlpos import located, mark_of


class ReferenceBinding(SearchBinding):
    """``column``/``template`` holds the target's id; ``type`` (optional) is the target's
    resource type, for parameters that may point at several types (Provenance ``target``)."""

    def __init__(self, target: IdTemplate, target_type: str | None = None):
        self.target = target
        self.target_type = target_type

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve) -> ReferenceBinding:
        template = spec.get("template") or located("{" + spec["column"] + "}", mark_of(spec["column"]))
        return cls(IdTemplate(template, resolve), spec.get("type"))

    def _fits(self, value: Any) -> bool:
        return self.target_type is None or value.type is None or value.type == self.target_type

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, all_of(*(present(c) for c in self.target.columns)))
        if found is not None:
            return found
        return self.target.match_any([value.id for value in _references(clause) if self._fits(value)])

    def sort_key(self) -> ColumnElement:
        return self.target.sql()

    def include_column(self) -> ColumnElement:
        column = self.target.sql()
        # a binary uuid ("{p.uuid:uuid}") reads back as its text form; a CAST would give the raw bytes
        return column if isinstance(column.type, UuidText) else as_text(column)


class CollectionReferenceBinding(ReferenceBinding):
    """A reference held by rows of another table that belong to this row (a source's
    ``collections``), e.g. a lab report's ``result`` Observations: matched with EXISTS."""

    def __init__(
        self,
        target: IdTemplate,
        exists: Callable[[ColumnElement], ColumnElement],
        target_type: str | None = None,
        listed: ColumnElement | None = None,
    ):
        super().__init__(target, target_type)
        self.exists = exists  # condition on the collection's rows -> EXISTS (...) for this row
        self.listed = listed  # every target id of the row as one text column (what _include reads)

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, self.exists(all_of(*(present(c) for c in self.target.columns))))
        if found is not None:
            return found
        matched = any_of(*(self.target.match(value.id) for value in _references(clause) if self._fits(value)))
        return FALSE if is_false(matched) else self.exists(matched)

    def sort_key(self) -> ColumnElement:
        return sa.null()

    several_per_row = True  # every id of the row's collection, joined in one column

    def include_column(self) -> ColumnElement:
        assert self.listed is not None  # several_per_row bindings are built with it
        return self.listed


def _references(clause: SearchClause) -> list[ReferenceValue]:
    return [value for value in clause.values if isinstance(value, ReferenceValue)]
