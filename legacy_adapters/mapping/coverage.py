"""Coverage report: how much of the legacy data each crosswalk translates.

For every coded element of a mapping (a value expression with ``crosswalk:``), one
``SELECT code, COUNT(*) … GROUP BY code`` over the element's source — its joins and row
filters, so soft-deleted rows do not count — then each distinct local code is marked
``mapped`` (has a standard coding), ``unmatched`` (in the crosswalk, deliberately without
one) or ``unknown`` (not in the crosswalk at all). Percent covered = rows whose code is
mapped / rows that have a code. The database does the counting; no table is loaded.
A code-string column (``split_codings``) counts the items in the crosswalk's local system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from legacy_adapters.mapping.binder import bind_mapping
from legacy_adapters.mapping.codings import split_codings
from legacy_adapters.mapping.loader import MappingSpec


@dataclass
class CodeCount:
    code: str
    rows: int
    status: str  # mapped | unmatched | unknown
    standard: list[str] = field(default_factory=list)  # 'system|code' it translates to


@dataclass
class ElementCoverage:
    resource: str
    source: str
    element: str
    column: str
    crosswalk: str
    rows: int = 0  # rows with a code
    rows_without_code: int = 0
    rows_mapped: int = 0
    codes: list[CodeCount] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return round(100.0 * self.rows_mapped / self.rows, 1) if self.rows else 100.0

    def as_dict(self) -> dict:
        return {**asdict(self), "percent": self.percent}


def coded_elements(node: Any, path: str = "") -> list[tuple[str, dict]]:
    """(element path, value expression) for every crosswalk-coded leaf of a resource template."""
    if isinstance(node, dict):
        if "crosswalk" in node and "column" in node:
            return [(path, node)]
        return [found for key, child in node.items() for found in coded_elements(child, f"{path}.{key}" if path else key)]
    if isinstance(node, list):
        return [found for child in node for found in coded_elements(child, path)]
    return []


def coverage(mapping: MappingSpec, connection: sa.Connection) -> list[ElementCoverage]:
    if mapping.terminology is None:
        return []
    snapshot = mapping.terminology.current()
    bound = bind_mapping(mapping, connection)
    report = []
    for type_name, spec in mapping.resources.items():
        for source_spec in spec.sources:
            source_name = source_spec.get("name", source_spec["table"])
            branch = next(b for b in bound[type_name].branches if b.source.name == source_name)
            for element, expression in coded_elements(source_spec["resource"]):
                crosswalk = snapshot.crosswalks[expression["crosswalk"]]
                column = _column(branch.source.from_clause, expression["column"])
                item = ElementCoverage(type_name, source_name, element, expression["column"], crosswalk.name)
                counted = sa.func.count().label("n")
                statement = (
                    sa.select(column, counted)
                    .select_from(branch.source.from_clause)
                    .where(*branch.where)
                    .group_by(column)
                    .order_by(counted.desc(), column)
                )
                local_codes = _local_codes(expression, crosswalk.local_system, snapshot)
                counts: dict[str, int] = {}
                for text, rows in connection.execute(statement):
                    codes = local_codes(text)
                    if not codes:
                        item.rows_without_code += rows
                        continue
                    item.rows += rows
                    mapped = False
                    for code in codes:
                        counts[code] = counts.get(code, 0) + rows
                        mapped = mapped or len(crosswalk.codings_for(code)) > 1
                    item.rows_mapped += rows if mapped else 0
                for code, rows in counts.items():
                    standard = [f"{c['system']}|{c['code']}" for c in crosswalk.codings_for(code)[:-1]]
                    status = "mapped" if standard else ("unmatched" if code in crosswalk.codings else "unknown")
                    item.codes.append(CodeCount(code, rows, status, standard))
                item.codes.sort(key=lambda c: (-c.rows, c.code))
                report.append(item)
    return report


def _local_codes(expression: dict, local_system: str, snapshot: Any) -> Callable[[Any], list[str]]:
    """A column value → the local codes in it: the value itself, or, for a code-string column
    (``split_codings``, e.g. 'ICD10:I10;LOCAL:HTN2'), its items in the crosswalk's local system
    (a row holding only standard codes has no local code for the crosswalk to translate)."""
    if "split_codings" not in expression:
        return lambda value: [] if value is None or not str(value).strip() else [str(value).strip()]
    options = dict(expression["split_codings"] or {})
    if isinstance(options.get("systems"), str):
        options["systems"] = snapshot.aliases.get(options["systems"], {})
    split = split_codings(**options)
    return lambda value: [] if value is None else sorted({c["code"] for c in split(value) or [] if c.get("system") == local_system})


def _column(from_clause: Any, ref: str) -> sa.ColumnElement:
    alias, _, name = ref.rpartition(".")
    for table in sa.sql.util.surface_selectables(from_clause):
        if getattr(table, "name", None) == alias and hasattr(table, "c") and name in table.c:
            return table.c[name]
    raise ValueError(f"column {ref!r} is not in its source")
