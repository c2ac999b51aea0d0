"""Token parameters: codes in a column (value-mapped, constant, in a code table, in a
crosswalk, or in a multi-code string), matched as ``[system|]code``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.search.params import SearchClause, TokenValue
from legacy_adapters.code_tables import CodeTable
from legacy_adapters.mapping.bindings.base import Resolve, SearchBinding, missing
from legacy_adapters.mapping.bindings.first import FirstOfBinding
from legacy_adapters.mapping.codestrings import CodeString
from legacy_adapters.mapping.columns import exact_in
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.sqlexpr import FALSE, TRUE, all_of, any_of, negate, present


@dataclass
class Coding:
    system: str | None
    column: ColumnElement | None  # None for a constant code
    const: str | None
    reverse: dict[str, list[str]] | None  # FHIR code -> legacy values, when the column is value-mapped
    otherwise: Any = None
    default: str | None = None  # the code an absent legacy value stands for
    lookup: CodeTable | None = None  # codes live in a legacy code table keyed by ``column``
    absent: tuple = ()  # sentinel legacy values meaning "no code"

    def present(self) -> ColumnElement:
        if self.lookup is not None and self.column is not None:
            return self.lookup.present(self.column)
        if self.column is None or self.default is not None:
            return TRUE
        return all_of(present(self.column), *self._not_sentinel())

    def _not_sentinel(self) -> list[ColumnElement]:
        return [sa.not_(exact_in(self.column, list(self.absent)))] if self.absent and self.column is not None else []

    def equals(self, code: str) -> ColumnElement:
        """Never NULL, so that ':not' (NOT ...) keeps rows that lack the code."""
        if self.column is None:
            return TRUE if self.const == code else FALSE
        sentinels = {str(v) for v in self.absent}
        if self.reverse is None:
            legacy = [code]
        else:
            legacy = list(self.reverse.get(code, []))
            if self.otherwise == "keep" and code not in self._mapped_keys:
                legacy.append(code)
        legacy = [value for value in legacy if value not in sentinels]
        has_value = all_of(present(self.column), *self._not_sentinel())
        condition = all_of(present(self.column), exact_in(self.column, legacy)) if legacy else FALSE
        if self.reverse is not None and self.otherwise not in (None, "keep") and code == self.otherwise:
            # Values outside the map show up as the 'otherwise' code.
            condition = any_of(condition, all_of(has_value, sa.not_(exact_in(self.column, self._mapped_keys))))
        if self.default is not None and code == self.default:
            condition = any_of(condition, sa.not_(has_value))
        return condition

    @property
    def _mapped_keys(self) -> list[str]:
        return [key for keys in (self.reverse or {}).values() for key in keys]


class CrosswalkCoding:
    """A local-code column translated through a crosswalk: it answers for the local system *and*
    every standard system the crosswalk maps to. ``http://loinc.org|2345-7`` becomes
    ``column IN (local codes mapped to it)``, computed from the current crosswalk snapshot; a
    standard system never matches a local code by accident (``loinc|GLU`` finds nothing).

    Over a code-string column (``split_codings``, e.g. ``'ICD10:I10;LOCAL:HTN2'``) the local codes
    are the items in the crosswalk's local system, and the standard codes the legacy stored
    itself are matched as they are: ``icd-10-cm|I10`` finds ``ICD10:I10`` and ``LOCAL:HTN2``."""

    def __init__(self, column: ColumnElement, terminology: Any, name: str, code_string: CodeString | None = None):
        self.column = column
        self.terminology = terminology
        self.name = name
        self.system = terminology.current().crosswalks[name].local_system
        self.const = None
        self.code_string = code_string
        if code_string is not None and self.system not in code_string.systems.values():
            raise MappingError(f"crosswalk {name!r}: the code strings' systems need a prefix for its local system {self.system!r}")

    def present(self) -> ColumnElement:
        return self.code_string.present() if self.code_string is not None else present(self.column)

    def _in(self, keys: Any) -> ColumnElement:
        keys = sorted(keys)
        if not keys:
            return FALSE
        if self.code_string is not None:
            return any_of(*(self.code_string.match(self.system, key) for key in keys))
        return all_of(present(self.column), exact_in(self.column, keys))

    def match(self, value: TokenValue) -> ColumnElement:
        if self.code_string is None or value.system == self.system:
            return self._translated(value)
        return any_of(self.code_string.match(value.system, value.code), self._translated(value))

    def _translated(self, value: TokenValue) -> ColumnElement:
        crosswalk = self.terminology.current().crosswalks.get(self.name)
        local_system = crosswalk.local_system if crosswalk else self.system
        if value.system == local_system:
            return self.present() if value.code is None else self._in([value.code])
        if crosswalk is None or value.system == "":
            return FALSE
        if value.system is None:  # a bare code matches in any system: local, or any standard one
            keys = {value.code}
            for system in crosswalk.target_systems:
                keys.update(crosswalk.local_codes.get((system, value.code), ()))
            return self._in(keys)
        if value.code is None:
            return self._in(crosswalk.mapped_in.get(value.system, ()))
        return self._in(crosswalk.local_codes.get((value.system, value.code), ()))


class TokenBinding(SearchBinding):
    def __init__(self, codings: list[Coding | CrosswalkCoding | CodeString]):
        self.codings = codings

    @classmethod
    def from_spec(
        cls, spec: dict, resolve: Resolve, code_table: Callable[..., CodeTable] | None = None, terminology: Any = None
    ) -> SearchBinding:
        if "first" in spec:
            return FirstOfBinding([cls.from_spec(item, resolve, code_table, terminology) for item in spec["first"]])
        items = spec.get("codings") or [spec]
        codings: list[Coding | CrosswalkCoding | CodeString] = []
        for item in items:
            if isinstance((item.get("split_codings") or {}).get("systems"), str):  # the name of a terminology alias table
                item = {
                    **item,
                    "split_codings": {**item["split_codings"], "systems": _alias_table(terminology, item["split_codings"]["systems"])},
                }
            if "crosswalk" in item:
                if "column" not in item or terminology is None or item["crosswalk"] not in terminology.current().crosswalks:
                    raise MappingError(
                        f"token binding {item!r}: 'crosswalk' needs a 'column' (the local code) and a crosswalk "
                        "named in the mapping's terminology section"
                    )
                local = resolve(item["column"])
                strings = CodeString(local, **(item["split_codings"] or {})) if "split_codings" in item else None
                codings.append(CrosswalkCoding(local, terminology, item["crosswalk"], strings))
                continue
            if "split_codings" in item:  # a column of 'TYPE:code;TYPE:code' strings
                codings.append(CodeString(resolve(item["column"]), **(item["split_codings"] or {})))
                continue
            reverse: dict[str, list[str]] | None = None
            if "map" in item:
                reverse = {}
                for legacy, code in item["map"].items():
                    reverse.setdefault(str(code), []).append(str(legacy))
            column = resolve(item["column"]) if "column" in item else None
            if column is None and "const" not in item:
                raise MappingError(f"token binding {item!r} needs 'column' or 'const'")
            lookup = None
            if "lookup" in item:
                if column is None or code_table is None or reverse is not None:
                    raise MappingError("'lookup' needs a 'column' (the local key) and no 'map'", getattr(item, "mark", None))
                if isinstance(item["lookup"], dict) and not item.get("system"):
                    raise MappingError("an inline lookup {table, key, code} needs the binding's 'system'", getattr(item, "mark", None))
                lookup = code_table(item["lookup"], column, item.get("system"))
            codings.append(
                Coding(
                    item.get("system"),
                    column,
                    _opt_str(item.get("const")),
                    reverse,
                    item.get("otherwise"),
                    _opt_str(item.get("default")),
                    lookup,
                    tuple(item.get("absent") or ()),
                )
            )
        return cls(codings)

    def present(self) -> ColumnElement:
        return any_of(*(c.present() for c in self.codings))

    def predicate(self, clause: SearchClause) -> ColumnElement:
        found = missing(clause, self.present())
        if found is not None:
            return found
        matched = any_of(*(self._match(value) for value in clause.values if isinstance(value, TokenValue)))
        return negate(matched) if clause.modifier == "not" else matched

    def _match(self, value: TokenValue) -> ColumnElement:
        return any_of(*(self._match_coding(c, value) for c in self.codings))

    @staticmethod
    def _match_coding(coding: Coding | CrosswalkCoding | CodeString, value: TokenValue) -> ColumnElement:
        if isinstance(coding, CrosswalkCoding):
            return coding.match(value)
        if isinstance(coding, CodeString):
            return coding.match(value.system, value.code)
        if coding.lookup is not None:  # the code table knows each code's system
            return coding.lookup.match(coding.column, value.system, value.code)  # type: ignore[arg-type]
        if value.system is not None and (coding.system or "") != value.system:
            return FALSE
        if value.code is None:
            return coding.present()
        return coding.equals(value.code)

    def sort_key(self) -> ColumnElement:
        first = self.codings[0]
        return first.column if first.column is not None else sa.literal(first.const, sa.String)


def _alias_table(terminology: Any, name: str) -> dict[str, str]:
    table = terminology.current().aliases.get(name) if terminology is not None else None
    if table is None:
        raise MappingError(f"token binding: unknown alias table {name!r} (aliases come from the mapping's terminology section)")
    return dict(table)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
