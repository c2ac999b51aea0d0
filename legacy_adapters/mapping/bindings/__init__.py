"""How each FHIR search parameter type filters and sorts on legacy columns.

One binding class per parameter type, built from a source's ``search:`` entry. Each
answers two questions for the compiler: ``predicate(clause)`` – the SQL for an AND-clause
of OR-values – and ``sort_key()`` – the expression to order by. Reference bindings also
give ``include_column()``, the target ids ``_include`` reads. Semantics follow
https://hl7.org/fhir/R4/search.html; constants are decided in Python.

    base.py       column resolution, ``:missing`` (one rule for every type)
    ids.py        IdTemplate (resource ids made from columns, reversible) and ``_id``
    token.py      codes: value maps, constants, code tables, crosswalks, code strings
    string.py     starts-with, ``:exact``, ``:contains``
    date.py       dates and periods against legacy date columns
    reference.py  target ids in a column, a template, or a collection's rows
"""

from legacy_adapters.mapping.bindings.base import SearchBinding
from legacy_adapters.mapping.bindings.date import DateBinding, PeriodBinding
from legacy_adapters.mapping.bindings.ids import IdBinding, IdTemplate
from legacy_adapters.mapping.bindings.reference import CollectionReferenceBinding, ReferenceBinding
from legacy_adapters.mapping.bindings.string import StringBinding
from legacy_adapters.mapping.bindings.token import Coding, CrosswalkCoding, TokenBinding

Binding = SearchBinding  # every parameter type, and `first:` over several of them

__all__ = [
    "Binding",
    "Coding",
    "CollectionReferenceBinding",
    "CrosswalkCoding",
    "DateBinding",
    "IdBinding",
    "IdTemplate",
    "PeriodBinding",
    "ReferenceBinding",
    "SearchBinding",
    "StringBinding",
    "TokenBinding",
]
