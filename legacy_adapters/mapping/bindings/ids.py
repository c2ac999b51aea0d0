"""Resource ids made from columns (``"{v.vs_guid}-pulse"``), reversible, and the ``_id`` parameter."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.search.params import SearchClause, TokenValue
from legacy_adapters.mapping.bindings.base import Resolve, SearchBinding, missing
from legacy_adapters.mapping.columns import UuidAsText, UuidText, canonical_uuid, exact_in
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.sqlexpr import FALSE, TRUE, all_of, any_of, as_text, negate, python_type
from legacy_adapters.mapping.values import TEMPLATE_FIELD
from legacy_adapters.mapping.yamlpos import located, mark_of


class IdTemplate:
    """An id (or reference target) made from columns, e.g. ``"{v.vs_guid}-pulse"``; reversible."""

    def __init__(self, template: str, resolve: Resolve):
        pieces = TEMPLATE_FIELD.split(template)
        self.template = template
        self.literals = pieces[0::2]
        self.columns = [resolve(located(ref, mark_of(template))) for ref in pieces[1::2]]
        if not self.columns:
            raise MappingError(f"id template {template!r} must use at least one column", mark_of(template))
        pattern = "".join(re.escape(lit) + ("(.+?)" if i < len(self.columns) else "") for i, lit in enumerate(self.literals))
        self._regex = re.compile(pattern)
        # A converted column (a binary uuid) cannot be concatenated in SQL: the id's SQL is then
        # the column alone (the literals are constant) and render() adds the literals.
        self.converted = any(isinstance(column.type, UuidText) for column in self.columns)
        if self.converted and len(self.columns) != 1:
            raise MappingError(f"id template {template!r}: a converted column ({{x.uuid:uuid}}) must be its only column", mark_of(template))

    def has_value(self) -> ColumnElement:
        """Rows whose converted id column is empty (NULL or sixteen zero bytes) are not resources."""
        if not self.converted:
            return TRUE
        column = self.columns[0]
        return sa.and_(column.isnot(None), column != sa.bindparam(None, bytes(16), type_=column.type))

    def render(self, value: Any) -> str:
        """The id text for the value :meth:`sql` selected."""
        if self.converted:
            return f"{self.literals[0]}{value}{self.literals[1]}"
        return str(value)

    def parse(self, value: str) -> list[Any] | None:
        match = self._regex.fullmatch(value)  # not .match: '$' would let a trailing newline through
        if not match:
            return None
        parsed: list[int | str] = []
        for column, text in zip(self.columns, match.groups()):
            if python_type(column) is int:
                # Only the canonical ASCII form, so one row has exactly one id ('01', '²' are not '1').
                if not (text.isascii() and text.isdigit()) or len(text) > 18 or str(int(text)) != text:
                    return None
                parsed.append(int(text))
            elif isinstance(column.type, UuidText):
                if canonical_uuid(text) is None:
                    return None
                parsed.append(text)
            else:
                parsed.append(text)
        return parsed

    def match(self, value: str) -> ColumnElement:
        parsed = self.parse(value)
        if parsed is None:
            return FALSE
        return all_of(*(exact_in(column, [v]) for column, v in zip(self.columns, parsed)))

    def match_any(self, values: list[str]) -> ColumnElement:
        """Any of ``values``, as one ``IN`` list: an OR chain of hundreds of ids (an include batch)
        would exceed SQLite's expression depth."""
        parsed = [p for p in (self.parse(value) for value in values) if p is not None]
        if len(parsed) <= 1:
            return any_of(*(self.match(value) for value in values))
        if len(self.columns) == 1:
            return exact_in(self.columns[0], [p[0] for p in parsed])
        return sa.tuple_(*self.columns).in_([tuple(p) for p in parsed])

    def match_bound(self, prefix: str) -> ColumnElement:
        """Like :meth:`match`, with the parsed parts as bind parameters ``{prefix}_0``, ``{prefix}_1``…,
        so one statement serves every id."""
        return all_of(*(exact_in(column, sa.bindparam(f"{prefix}_{i}", type_=column.type)) for i, column in enumerate(self.columns)))

    def sql(self, text: bool = False) -> ColumnElement:
        """What the id is selected as (:meth:`render` makes it the id). ``text``: as text even
        when the column is a binary uuid, for a union with other sources' text ids."""
        if len(self.columns) == 1 and (self.literals == ["", ""] or self.converted):
            return UuidAsText(self.columns[0]) if text and self.converted else self.columns[0]
        return self.text_sql()

    def text_sql(self) -> ColumnElement:
        """The whole id as text in SQL, literals and all (a binary uuid in its canonical form)."""
        expr: ColumnElement = sa.literal(self.literals[0], sa.String)
        for column, literal in zip(self.columns, self.literals[1:]):
            expr = expr + (UuidAsText(column) if isinstance(column.type, UuidText) else as_text(column))
            if literal:
                expr = expr + sa.literal(literal, sa.String)
        return expr


class IdBinding(SearchBinding):
    """``_id``: a token matched against the resource id template, so it hits the key columns."""

    def __init__(self, id_template: IdTemplate):
        self.id = id_template

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, TRUE)  # every resource has an id
        if found is not None:
            return found
        codes = [v.code for v in clause.values if isinstance(v, TokenValue) and v.code and v.system in (None, "")]
        matched = self.id.match_any(codes) if codes else FALSE
        return negate(matched) if clause.modifier == "not" else matched

    def sort_key(self) -> ColumnElement:
        return self.id.sql()

    def text_sort_key(self) -> ColumnElement:
        """The whole id as text: the sort key where a type's ids are binary uuids in some sources
        and text in others, so every source compares in one form."""
        return self.id.text_sql()
