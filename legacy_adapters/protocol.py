"""What a legacy backend must answer: its capabilities, read, and search.

The façade's service talks only to this contract, so a backend that is not SQL
(a vendor API, a file export) can be plugged in beside the generic SQL adapter; the
façade's own records (the audit trail) answer it too. A backend whose mapping names
crosswalks and code tables also offers them (:class:`TerminologySource`), for the
terminology endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from facade.search.params import SearchParamDef
from facade.search.request import SearchRequest

if TYPE_CHECKING:
    from legacy_adapters.code_tables import LegacyCodeTables
    from terminology.registry import Terminology


@dataclass
class Page:
    resources: list[dict] = field(default_factory=list)
    next_cursor: tuple | None = None  # keyset position after the last resource, when more follow
    previous_cursor: tuple | None = None  # position of the first resource, when more precede it
    total: int | None = None  # only when the request asked for it
    # For each reference parameter named in ``request.references``: the target ids its
    # resources on this page point at (what ``_include`` fetches next, in one batch).
    references: dict[str, list[str]] = field(default_factory=dict)


class LegacyAdapter(Protocol):
    def resource_types(self) -> list[str]:
        """FHIR resource types this backend serves."""

    def search_params(self, resource_type: str) -> dict[str, SearchParamDef]:
        """The search parameters it can honour for a type (drives the CapabilityStatement)."""

    def read(self, resource_type: str, resource_id: str) -> dict | None:
        """One resource as a plain FHIR JSON dict, or None."""

    def search(self, request: SearchRequest) -> Page:
        """One page of matches in a total order, starting after ``request.cursor`` (or ending
        before it when ``request.before``); an adapter that cannot page backwards leaves
        ``previous_cursor`` unset."""


@runtime_checkable
class EachSource(Protocol):
    def search_each(self, request: SearchRequest, each: Callable[[dict], object]) -> Page:
        """The page ``search`` answers, each resource handed to ``each`` as soon as it is built
        instead of kept in ``resources`` (a bulk export encodes it and lets it go)."""


@runtime_checkable
class IdSource(Protocol):
    def search_ids(self, request: SearchRequest) -> Page:
        """The page ``search`` answers, each resource holding its ``resourceType`` and ``id``
        alone, found without building the resources (a Group's members)."""


@runtime_checkable
class ReadinessSource(Protocol):
    def ready(self) -> None:
        """Return when the backend can answer now (mapping bound, database answering); raise otherwise."""


@runtime_checkable
class ProfileSource(Protocol):
    def profiles(self, resource_type: str) -> list[str]:
        """The profiles the type's resources may claim in ``meta.profile`` (CapabilityStatement ``supportedProfile``)."""


@runtime_checkable
class TerminologySource(Protocol):
    def terminology(self) -> Terminology | None:
        """The crosswalks the mapping names (None: it names none)."""

    def code_tables(self) -> LegacyCodeTables | None:
        """The legacy code tables the mapping declares as local code systems."""


@runtime_checkable
class GroupSource(Protocol):
    def groups(self) -> dict[str, dict[str, str]]:
        """Patient groups the mapping declares: id → ``{name, members}`` (a Patient search query)."""
