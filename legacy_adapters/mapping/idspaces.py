"""Ids of one resource type must come from one row each: the id spaces of its sources.

Two sources of a type whose id templates can spell the same id (``{m.measurement_id}`` and
``{o.observation_id}``, both integer keys: 1 is both) would answer a read with whichever row
comes first and put one id twice in a Bundle. When the templates decide it – their literal
prefixes or suffixes differ, or one holds only digits where the other has a letter – nothing
is asked of the data. Integer keys that overlap are an error when the mapping is bound (ids
counting from 1 in two tables always meet); other overlaps (text keys, guids) are looked for
in the data by ``mapping check`` (:func:`overlapping_pairs`).
"""

from __future__ import annotations

from typing import Any

from legacy_adapters.mapping.columns import UuidText
from legacy_adapters.mapping.errors import Problems
from legacy_adapters.mapping.sqlexpr import python_type
from legacy_adapters.mapping.yamlpos import mark_of

DIGITS, UUID, TEXT = "digits", "uuid", "text"
_CHARS = {DIGITS: set("-0123456789"), UUID: set("0123456789abcdef-")}


def _kinds(template: Any) -> list[str]:
    kinds = []
    for column in template.columns:
        if isinstance(column.type, UuidText):
            kinds.append(UUID)
        elif python_type(column) is int:
            kinds.append(DIGITS)
        else:
            kinds.append(TEXT)
    return kinds


def may_overlap(a: Any, b: Any) -> bool:
    """Can the two id templates spell the same id? (False only when the templates decide it.)"""
    first_a, first_b = a.literals[0], b.literals[0]
    if not (first_a.startswith(first_b) or first_b.startswith(first_a)):
        return False
    last_a, last_b = a.literals[-1], b.literals[-1]
    if not (last_a.endswith(last_b) or last_b.endswith(last_a)):
        return False
    return not (_excludes(a, b) or _excludes(b, a))


def _excludes(a: Any, b: Any) -> bool:
    """``a`` is a bare column of digits (or a uuid) where ``b`` starts or ends with other characters."""
    if len(a.columns) != 1 or a.literals != ["", ""]:
        return False
    allowed = _CHARS.get(_kinds(a)[0])
    if allowed is None:
        return False
    literal = b.literals[0] + b.literals[-1]
    return any(ch not in allowed for ch in literal)


def certain(a: Any, b: Any) -> bool:
    """Both spell ids the same way from integer keys: their keys meet (1, 2, 3… in each table)."""
    return a.literals == b.literals and _kinds(a) == _kinds(b) and set(_kinds(a)) == {DIGITS}


def overlapping_pairs(resource: Any) -> list[tuple[Any, Any]]:
    """Branches of different sources (or variants) whose ids may meet: for a data check."""
    pairs = []
    branches = resource.branches
    for i, a in enumerate(branches):
        for b in branches[i + 1 :]:
            same_row = a.source is b.source and a.id.template == b.id.template  # variants of one row: one id
            if not same_row and may_overlap(a.id, b.id):
                pairs.append((a, b))
    return pairs


def check_id_spaces(bound: dict[str, Any], problems: Problems) -> None:
    for type_name, resource in bound.items():
        for a, b in overlapping_pairs(resource):
            if a.source is not b.source and certain(a.id, b.id):
                other = mark_of(b.id.template)
                problems.add(
                    f"sources {a.source.name!r} and {b.source.name!r} both make ids {a.id.template!r} / {b.id.template!r}"
                    f"{f' (at {other})' if other else ''} from integer keys, so the same id comes from two rows:"
                    f' give each source its own prefix (e.g. id: "{a.source.name}-{{…}}")',
                    mark_of(a.id.template),
                    type_name,
                )
