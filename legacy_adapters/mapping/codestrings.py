"""Searching code strings: one text column holding several ``TYPE:code`` items.

Schemas such as OpenEMR's keep a problem's codes as ``ICD10:E11.9;SNOMED-CT:44054006``.
Output uses the ``split_codings`` value transform (values.py); this is the search
side, a token binding item ``{column: l.diagnosis, split_codings: {systems: {...}}}``.
A searched ``system|code`` becomes the items ``PREFIX:code`` for every prefix that
stands for the system, and the column must hold one of them as a whole item (equal,
first, last or in the middle). Without a system, any prefix (or none) matches.
Matching is exact (see columns.py) and cannot use an index on the column: bind it
on sources that other filters (the patient, the row type) narrow first.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.sql.elements import ColumnElement

from legacy_adapters.mapping.columns import ANY, exact_in, exact_like
from legacy_adapters.mapping.sqlexpr import all_of, any_of, present


class CodeString:
    """A token binding item over a multi-code text column."""

    def __init__(self, column: ColumnElement, systems: Mapping[str, str] | None = None, separator: str = ";", system_separator: str = ":"):
        self.column = column
        self.systems = dict(systems or {})
        self.separator = separator
        self.system_separator = system_separator

    def present(self) -> ColumnElement:
        return present(self.column)

    def match(self, system: str | None, code: str | None) -> ColumnElement:
        """``system|code`` as FHIR token search reads it (None: not given; '': explicitly no system).
        Never NULL, so that ':not' keeps rows without codes."""
        return all_of(self.present(), self._match(system, code))

    def _match(self, system: str | None, code: str | None) -> ColumnElement:
        prefixes = [prefix for prefix, uri in self.systems.items() if uri == system]
        if code is None:
            if system is None:
                return self.present()
            return any_of(*(self._starts_item(prefix + self.system_separator) for prefix in prefixes))
        if system is None:  # any prefix, known or not, or a bare code
            return any_of(self._whole_item(code), self._ends_item(self.system_separator + code))
        if system == "":
            return self._whole_item(code)
        return any_of(*(self._whole_item(prefix + self.system_separator + code) for prefix in prefixes))

    def _whole_item(self, item: str) -> ColumnElement:
        sep, column = self.separator, self.column
        return any_of(
            exact_in(column, [item]),
            exact_like(column, item + sep, ANY),
            exact_like(column, ANY, sep + item),
            exact_like(column, ANY, sep + item + sep, ANY),
        )

    def _starts_item(self, start: str) -> ColumnElement:
        return any_of(exact_like(self.column, start, ANY), exact_like(self.column, ANY, self.separator + start, ANY))

    def _ends_item(self, end: str) -> ColumnElement:
        return any_of(exact_like(self.column, ANY, end), exact_like(self.column, ANY, end + self.separator, ANY))
