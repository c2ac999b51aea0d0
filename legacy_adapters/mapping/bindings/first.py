"""``first:`` in a search binding: the first alternative that has a value decides, as it does in
the resource. A row matches when its chosen alternative matches (each at its own precision, for
dates); ``:missing`` when no alternative has a value; sorting uses the chosen value."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.search.params import SearchClause
from legacy_adapters.mapping.bindings.base import SearchBinding, missing
from legacy_adapters.mapping.sqlexpr import all_of, any_of, negate


class FirstOfBinding(SearchBinding):
    """Alternatives of one parameter type; each offers ``present()`` (never NULL) and ``predicate``."""

    def __init__(self, alternatives: list[Any]):
        self.alternatives = alternatives

    def present(self) -> ColumnElement:
        return any_of(*(alt.present() for alt in self.alternatives))

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, self.present())
        if found is not None:
            return found
        if clause.modifier == "not":  # rows whose shown value is not it, those without one included
            return negate(self.predicate(replace(clause, modifier=None)))
        options: list[ColumnElement] = []
        earlier: list[ColumnElement] = []
        for alternative in self.alternatives:
            options.append(all_of(*(negate(p) for p in earlier), alternative.present(), alternative.predicate(clause)))
            earlier.append(alternative.present())
        return any_of(*options)

    def sort_key(self) -> ColumnElement:
        """The chosen alternative's value; dates of different kinds (a timestamp, a date, epoch
        seconds, parts) as ISO text, so that they sort together by their wall-clock text."""
        dated = all(hasattr(alt, "iso_key") for alt in self.alternatives)
        keys = [(alt.present(), alt.iso_key() if dated else alt.sort_key()) for alt in self.alternatives]
        return sa.case(*keys, else_=sa.null())

    def iso_key(self) -> ColumnElement:
        return self.sort_key()
