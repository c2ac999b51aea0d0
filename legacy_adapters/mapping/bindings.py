"""How each FHIR search parameter type filters and sorts on legacy columns.

One binding class per parameter type (token, string, date, reference), built
from a source's ``search:`` entry. Each answers two questions for the compiler:
``predicate(clause)`` – the SQL for an AND-clause of OR-values – and
``sort_key()`` – the expression to order by. Semantics follow
https://hl7.org/fhir/R4/search.html; constants are decided in Python.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from facade.errors import InvalidRequest
from facade.search.params import DateValue, Prefix, SearchClause, TokenValue
from legacy_adapters.mapping.codestrings import CodeString
from legacy_adapters.mapping.columns import UuidText, canonical_uuid, exact_in
from legacy_adapters.mapping.dates import LegacyDateFormat
from legacy_adapters.code_tables import CodeTable
from legacy_adapters.mapping.sqlexpr import FALSE, TRUE, all_of, any_of, as_text, is_false, negate, present, python_type
from legacy_adapters.mapping.errors import MappingError
from legacy_adapters.mapping.values import TEMPLATE_FIELD

Resolve = Callable[[str], ColumnElement]


class IdTemplate:
    """An id (or reference target) made from columns, e.g. ``"{v.vs_guid}-pulse"``; reversible."""

    def __init__(self, template: str, resolve: Resolve):
        pieces = TEMPLATE_FIELD.split(template)
        self.template = template
        self.literals = pieces[0::2]
        self.columns = [resolve(ref) for ref in pieces[1::2]]
        if not self.columns:
            raise MappingError(f"id template {template!r} must use at least one column")
        pattern = "".join(
            re.escape(lit) + ("(.+?)" if i < len(self.columns) else "") for i, lit in enumerate(self.literals)
        )
        self._regex = re.compile(pattern)
        # A converted column (a binary uuid) cannot be concatenated in SQL: the id's SQL is then
        # the column alone (the literals are constant) and render() adds the literals.
        self.converted = any(isinstance(column.type, UuidText) for column in self.columns)
        if self.converted and len(self.columns) != 1:
            raise MappingError(f"id template {template!r}: a converted column ({{x.uuid:uuid}}) must be its only column")

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
        parsed = []
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

    def sql(self) -> ColumnElement:
        if len(self.columns) == 1 and (self.literals == ["", ""] or self.converted):
            return self.columns[0]
        expr: ColumnElement = sa.literal(self.literals[0], sa.String)
        for column, literal in zip(self.columns, self.literals[1:]):
            expr = expr + as_text(column)
            if literal:
                expr = expr + sa.literal(literal, sa.String)
        return expr


# --------------------------------------------------------------------------- token
@dataclass
class Coding:
    system: str | None
    column: ColumnElement | None  # None for a constant code
    const: str | None
    reverse: dict[str, list[str]] | None  # FHIR code -> legacy values, when the column is value-mapped
    otherwise: Any = None
    default: str | None = None  # the code an absent legacy value stands for
    lookup: CodeTable | None = None  # codes live in a legacy code table keyed by ``column``

    def present(self) -> ColumnElement:
        if self.lookup is not None:
            keys = self.lookup.all_keys()
            return self.column.in_(keys) if keys else FALSE
        return TRUE if self.column is None or self.default is not None else present(self.column)

    def equals(self, code: str) -> ColumnElement:
        """Never NULL, so that ':not' (NOT ...) keeps rows that lack the code."""
        if self.column is None:
            return TRUE if self.const == code else FALSE
        if self.lookup is not None:
            keys = self.lookup.keys_for(code)
            return all_of(present(self.column), exact_in(self.column, keys)) if keys else FALSE
        if self.reverse is None:
            legacy = [code]
        else:
            legacy = list(self.reverse.get(code, []))
            if self.otherwise == "keep" and code not in self._mapped_keys:
                legacy.append(code)
        condition = all_of(present(self.column), exact_in(self.column, legacy)) if legacy else FALSE
        if self.reverse is not None and self.otherwise not in (None, "keep") and code == self.otherwise:
            # Values outside the map show up as the 'otherwise' code.
            condition = any_of(condition, all_of(present(self.column), sa.not_(exact_in(self.column, self._mapped_keys))))
        if self.default is not None and code == self.default:
            condition = any_of(condition, sa.not_(present(self.column)))
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


class TokenBinding:
    def __init__(self, codings: list[Coding | CrosswalkCoding]):
        self.codings = codings

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve, code_table: Callable[[dict, ColumnElement], CodeTable] | None = None,
                  terminology: Any = None) -> TokenBinding:
        items = spec.get("codings") or [spec]
        codings: list[Coding | CrosswalkCoding] = []
        for item in items:
            if isinstance((item.get("split_codings") or {}).get("systems"), str):  # the name of a terminology alias table
                item = {**item, "split_codings": {**item["split_codings"], "systems": _alias_table(terminology, item["split_codings"]["systems"])}}
            if "crosswalk" in item:
                if "column" not in item or terminology is None or item["crosswalk"] not in terminology.current().crosswalks:
                    raise MappingError(f"token binding {item!r}: 'crosswalk' needs a 'column' (the local code) and a crosswalk "
                                       "named in the mapping's terminology section")
                column = resolve(item["column"])
                strings = CodeString(column, **(item["split_codings"] or {})) if "split_codings" in item else None
                codings.append(CrosswalkCoding(column, terminology, item["crosswalk"], strings))
                continue
            if "split_codings" in item:  # a column of 'TYPE:code;TYPE:code' strings
                codings.append(CodeString(resolve(item["column"]), **(item["split_codings"] or {})))
                continue
            reverse = None
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
                    raise MappingError(f"token binding {item!r}: 'lookup' needs a 'column' (the local key) and no 'map'")
                lookup = code_table(item["lookup"], column)
            codings.append(
                Coding(item.get("system"), column, _opt_str(item.get("const")), reverse, item.get("otherwise"), _opt_str(item.get("default")), lookup)
            )
        return cls(codings)

    def predicate(self, clause: SearchClause) -> ColumnElement:
        if clause.modifier == "missing":
            anything = any_of(*(c.present() for c in self.codings))
            return negate(anything) if clause.values[0].missing else anything  # type: ignore[union-attr]
        matched = any_of(*(self._match(value) for value in clause.values))  # type: ignore[arg-type]
        return negate(matched) if clause.modifier == "not" else matched

    def _match(self, value: TokenValue) -> ColumnElement:
        return any_of(*(self._match_coding(c, value) for c in self.codings))

    @staticmethod
    def _match_coding(coding: Coding | CrosswalkCoding | CodeString, value: TokenValue) -> ColumnElement:
        if isinstance(coding, CrosswalkCoding):
            return coding.match(value)
        if isinstance(coding, CodeString):
            return coding.match(value.system, value.code)
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


# --------------------------------------------------------------------------- string
class StringBinding:
    """Starts-with, case-insensitive by default; ``normalized: upper`` columns stay index-friendly."""

    def __init__(self, columns: list[ColumnElement], normalized: str | None, byte_ordered: bool = False):
        self.columns = columns
        self.normalized = normalized
        self.byte_ordered = byte_ordered  # text sorts by code point (SQLite's BINARY collation)

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve, byte_ordered: bool = False) -> StringBinding:
        refs = spec.get("columns") or [spec["column"]]
        normalized = spec.get("normalized")
        if normalized not in (None, "upper", "lower"):
            raise MappingError("string binding 'normalized' must be upper or lower")
        return cls([resolve(ref) for ref in refs], normalized, byte_ordered)

    def predicate(self, clause: SearchClause) -> ColumnElement:
        if clause.modifier == "missing":
            anything = any_of(*(present(c) for c in self.columns))
            return negate(anything) if clause.values[0].missing else anything  # type: ignore[union-attr]
        return any_of(
            *(self._match(column, value.value, clause.modifier) for value in clause.values for column in self.columns)  # type: ignore[union-attr]
        )

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


# --------------------------------------------------------------------------- date
class DateBinding:
    """A legacy text date column compared against formatted bounds (see :mod:`dates`)."""

    def __init__(self, column: ColumnElement, fmt: LegacyDateFormat):
        self.column = column
        self.fmt = fmt

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve, date_format: Callable[[str], LegacyDateFormat]) -> DateBinding | PeriodBinding:
        if "date" not in spec:
            raise MappingError("date binding needs 'date' (the legacy format, e.g. '%Y%m%d')")
        if "end" in spec:
            return PeriodBinding(resolve(spec["column"]), resolve(spec["end"]), date_format(spec["date"]))
        return cls(resolve(spec["column"]), date_format(spec["date"]))

    def valid(self) -> ColumnElement:
        return self.column >= self.fmt.guard

    def predicate(self, clause: SearchClause) -> ColumnElement:
        if clause.modifier == "missing":
            missing = sa.or_(self.column.is_(None), negate(self.valid()))  # NOT (NULL >= guard) is NULL, not true
            return missing if clause.values[0].missing else self.valid()  # type: ignore[union-attr]
        return any_of(*(self._match(value) for value in clause.values))  # type: ignore[arg-type]

    def _match(self, value: DateValue) -> ColumnElement:
        # The stored value is a range [v, v + precision); bounds are rounded to that precision.
        col, fmt = self.column, self.fmt
        try:
            floor_low, ceil_low = fmt.floor(value.low), fmt.ceil(value.low)
            floor_high, ceil_high = fmt.floor(value.high), fmt.ceil(value.high)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in the legacy time zone
            raise InvalidRequest("date search value is outside the range of dates the legacy database can hold") from None
        b = fmt.format_bound
        prefix = value.prefix
        if prefix in (Prefix.EQ, Prefix.NE):
            inside = sa.and_(col >= b(ceil_low), col < b(floor_high)) if ceil_low < floor_high else FALSE
            return inside if prefix is Prefix.EQ else all_of(self.valid(), negate(inside))
        if prefix is Prefix.GT:
            return col >= b(floor_high)
        if prefix is Prefix.GE:
            return col >= b(floor_low)
        if prefix is Prefix.SA:
            return col >= b(ceil_high)
        if prefix is Prefix.LT:
            return sa.and_(self.valid(), col < b(ceil_low))
        if prefix is Prefix.LE:
            return sa.and_(self.valid(), col < b(ceil_high))
        return sa.and_(self.valid(), col < b(floor_low))  # EB

    def sort_key(self) -> ColumnElement:
        return self.column


class PeriodBinding:
    """A date parameter on a Period (e.g. Encounter.period) kept as two legacy text columns.

    The period is [start, end + precision); a junk or empty start or end is an open side
    (R4 search §3.1.1.4.3: a missing end means ongoing). Per the prefixes' definitions for
    ranges: ``eq`` – the period lies inside the search range; ``gt``/``ge`` – the period
    reaches past the search value's end/start; ``lt``/``le`` – it begins before the search
    value's start/end; ``sa`` – it starts after the search range; ``eb`` – it ends before it.
    A row with neither side known never matches. Sorting uses the start.
    """

    def __init__(self, start: ColumnElement, end: ColumnElement, fmt: LegacyDateFormat):
        self.start, self.end, self.fmt = start, end, fmt

    def _known(self, column: ColumnElement) -> ColumnElement:
        return sa.and_(column.isnot(None), column >= self.fmt.guard)  # never NULL

    def _open(self, column: ColumnElement) -> ColumnElement:
        return sa.or_(column.is_(None), column < self.fmt.guard)

    def predicate(self, clause: SearchClause) -> ColumnElement:
        known = sa.or_(self._known(self.start), self._known(self.end))
        if clause.modifier == "missing":
            return sa.not_(known) if clause.values[0].missing else known  # type: ignore[union-attr]
        return any_of(*(self._match(value, known) for value in clause.values))  # type: ignore[arg-type]

    def _match(self, value: DateValue, known: ColumnElement) -> ColumnElement:
        s, e, fmt = self.start, self.end, self.fmt
        try:
            floor_low, ceil_low = fmt.floor(value.low), fmt.ceil(value.low)
            floor_high, ceil_high = fmt.floor(value.high), fmt.ceil(value.high)
        except OverflowError:
            raise InvalidRequest("date search value is outside the range of dates the legacy database can hold") from None
        b = fmt.format_bound
        prefix = value.prefix
        if prefix in (Prefix.EQ, Prefix.NE):
            inside = (sa.and_(self._known(s), s >= b(ceil_low), self._known(e), e < b(floor_high))
                      if ceil_low < floor_high else FALSE)
            return inside if prefix is Prefix.EQ else all_of(known, negate(inside))
        if prefix in (Prefix.GT, Prefix.GE):
            bound = b(floor_high if prefix is Prefix.GT else floor_low)
            return sa.or_(sa.and_(self._known(e), e >= bound), sa.and_(self._open(e), self._known(s)))
        if prefix in (Prefix.LT, Prefix.LE):
            bound = b(ceil_low if prefix is Prefix.LT else ceil_high)
            return sa.or_(sa.and_(self._known(s), s < bound), sa.and_(self._open(s), self._known(e)))
        if prefix is Prefix.SA:
            return sa.and_(self._known(s), s >= b(ceil_high))
        return sa.and_(self._known(e), e < b(floor_low))  # EB

    def sort_key(self) -> ColumnElement:
        return self.start


# --------------------------------------------------------------------------- reference
class ReferenceBinding:
    """``column``/``template`` holds the target's id; ``type`` (optional) is the target's
    resource type, for parameters that may point at several types (Provenance ``target``)."""

    def __init__(self, target: IdTemplate, target_type: str | None = None):
        self.target = target
        self.target_type = target_type

    @classmethod
    def from_spec(cls, spec: dict, resolve: Resolve) -> ReferenceBinding:
        template = spec.get("template") or "{" + spec["column"] + "}"
        return cls(IdTemplate(template, resolve), spec.get("type"))

    def _fits(self, value: Any) -> bool:
        return self.target_type is None or value.type is None or value.type == self.target_type

    def predicate(self, clause: SearchClause) -> ColumnElement:
        if clause.modifier == "missing":
            anything = all_of(*(present(c) for c in self.target.columns))
            return negate(anything) if clause.values[0].missing else anything  # type: ignore[union-attr]
        return self.target.match_any([value.id for value in clause.values if self._fits(value)])  # type: ignore[union-attr]

    def sort_key(self) -> ColumnElement:
        return self.target.sql()


class CollectionReferenceBinding(ReferenceBinding):
    """A reference held by rows of another table that belong to this row (a source's
    ``collections``), e.g. a lab report's ``result`` Observations: matched with EXISTS."""

    def __init__(self, target: IdTemplate, exists: Callable[[ColumnElement], ColumnElement], target_type: str | None = None,
                 listed: ColumnElement | None = None):
        super().__init__(target, target_type)
        self.exists = exists  # condition on the collection's rows -> EXISTS (...) for this row
        self.listed = listed  # every target id of the row as one text column (what _include reads)

    def predicate(self, clause: SearchClause) -> ColumnElement:
        if clause.modifier == "missing":
            anything = self.exists(all_of(*(present(c) for c in self.target.columns)))
            return negate(anything) if clause.values[0].missing else anything  # type: ignore[union-attr]
        matched = any_of(*(self.target.match(value.id) for value in clause.values if self._fits(value)))  # type: ignore[union-attr]
        return FALSE if is_false(matched) else self.exists(matched)

    def sort_key(self) -> ColumnElement:
        return sa.null()


Binding = TokenBinding | StringBinding | DateBinding | PeriodBinding | ReferenceBinding


# --------------------------------------------------------------------------- _id
class IdBinding:
    """``_id``: a token matched against the resource id template, so it hits the key columns."""

    def __init__(self, id_template: IdTemplate):
        self.id = id_template

    def predicate(self, clause: SearchClause) -> ColumnElement:
        if clause.modifier == "missing":
            return FALSE if clause.values[0].missing else TRUE  # type: ignore[union-attr]
        codes = [v.code for v in clause.values if v.code and v.system in (None, "")]  # type: ignore[union-attr]
        matched = self.id.match_any(codes) if codes else FALSE
        return negate(matched) if clause.modifier == "not" else matched

    def sort_key(self) -> ColumnElement:
        return self.id.sql()
