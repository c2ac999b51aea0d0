"""Typed search parameters: what a backend is handed instead of query strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

# Modifiers each parameter type accepts; anything else is a 400 (R4 search §3.1.1.4.4).
MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"missing", "not"}),
    "string": frozenset({"missing", "exact", "contains"}),
    "date": frozenset({"missing"}),
    "reference": frozenset({"missing"}),
}


class Prefix(str, Enum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    LT = "lt"
    GE = "ge"
    LE = "le"
    SA = "sa"
    EB = "eb"


@dataclass(frozen=True)
class SearchParamDef:
    """One search parameter a resource type supports, as declared by its mapping."""

    name: str
    type: str  # token | string | date | reference
    target: str | None = None  # reference target type ("Resource" when it may point at several)
    description: str = ""
    sortable: bool = False
    targets: tuple[str, ...] = ()  # the types a "Resource" reference may point at, when the mapping lists them

    def refers_to(self, resource_type: str) -> bool:
        """Whether this reference parameter can point at ``resource_type``."""
        if self.targets:
            return resource_type in self.targets
        return self.target in ("Resource", "Any") or self.target == resource_type

    @property
    def modifiers(self) -> frozenset[str]:
        return MODIFIERS[self.type]


@dataclass(frozen=True)
class TokenValue:
    """``system|code``: system None = any system, "" = no system; code None = any code."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class StringValue:
    value: str


@dataclass(frozen=True)
class DateValue:
    """A prefixed date: the search range [low, high) at the value's own precision."""

    prefix: Prefix
    low: datetime
    high: datetime


@dataclass(frozen=True)
class ReferenceValue:
    type: str | None
    id: str


@dataclass(frozen=True)
class MissingValue:
    """``param:missing=true|false``."""

    missing: bool


SearchValue = TokenValue | StringValue | DateValue | ReferenceValue | MissingValue


@dataclass(frozen=True)
class SearchClause:
    """One query parameter occurrence: an OR list of values. Clauses are ANDed."""

    name: str
    type: str
    modifier: str | None
    values: tuple[SearchValue, ...]
    raw: str = field(compare=False)  # value exactly as received, for self/next links

    @property
    def key(self) -> str:
        return f"{self.name}:{self.modifier}" if self.modifier else self.name


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool = False

    def __str__(self) -> str:
        return f"-{self.name}" if self.descending else self.name


# Not a search parameter (clients cannot ask for it): the order the legacy rows are stored in,
# each source's primary key where it has one, else the id. Rows never move in it, and reading
# in it is sequential: how exports walk a whole type.
STORAGE_ORDER = SortKey("_storage")


@dataclass(frozen=True)
class Include:
    """``_include=Observation:patient[:Patient]`` (forward) or ``_revinclude=…`` (reverse)."""

    source: str  # the type holding the reference parameter
    param: str
    target: str  # the type it points at
    reverse: bool = False

    @property
    def parameter(self) -> str:
        return "_revinclude" if self.reverse else "_include"

    def __str__(self) -> str:
        return f"{self.source}:{self.param}:{self.target}"
