"""The façade's core: FHIR read and search over a legacy adapter. No web framework here.

Provider (web) → this service → adapter (mapping-compiled SQL) → row builders.

Every search the service makes — the one asked for, each ``_include``/``_revinclude``
lookup, each type of ``$everything`` — is a :class:`SearchRequest` passed through
:meth:`FhirService.run` with the caller's :class:`Access`, the single place where the
token's restrictions (patient compartment, granular scopes) are added to the SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone

from facade.access.grant import Access
from facade.core.bundle import searchset
from facade.core.capability import capability_statement
from facade.errors import Forbidden, NotFound
from facade.core.everything import everything
from facade.search.everything import parse_everything
from facade.core.includes import fetch_includes
from facade.search.params import SearchClause, TokenValue
from facade.search.parser import parse_search
from facade.search.request import SearchRequest
from facade.core.subsetting import element_sets
from legacy_adapters.protocol import LegacyAdapter, Page


class FhirService:
    def __init__(self, adapter: LegacyAdapter, *, default_count: int = 20, max_count: int = 1000, security=None):  # noqa: ANN001
        self.adapter = adapter
        self.security = security  # base URL → CapabilityStatement rest.security
        self.default_count = default_count
        self.max_count = max_count
        self.types = frozenset(adapter.resource_types())
        self.catalogues = {t: adapter.search_params(t) for t in adapter.resource_types()}
        self.started = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        for resource_type in self.types:  # _summary/_elements tables, read once from the R4 definitions
            element_sets(resource_type)

    def run(self, request: SearchRequest, access: Access, interaction: str = "search") -> Page:
        """The one way the service asks the adapter for resources (searches, includes, $everything):
        the grant's restrictions always replace whatever the request carried, so every query,
        page and lookup made on a client's behalf is narrowed in SQL the same way."""
        restrictions = access.restrictions(request.resource_type, interaction)
        if request.restrictions != restrictions:
            request = replace(request, restrictions=restrictions)
        return self.adapter.search(request)

    def _runner_for_others(self, access: Access):  # noqa: ANN202 - Run
        """Lookups made on the client's behalf (includes, $everything's types): a type the token
        does not grant contributes nothing instead of failing the whole request."""

        def run(request: SearchRequest) -> Page:
            try:
                return self.run(request, access)
            except Forbidden:
                return Page()

        return run

    def _known(self, resource_type: str) -> None:
        if resource_type not in self.types:
            raise NotFound(f"Resource type '{resource_type}' is not served here")

    def read(self, resource_type: str, resource_id: str, access: Access) -> dict:
        self._known(resource_type)
        if not access.restrictions(resource_type, "read"):
            resource = self.adapter.read(resource_type, resource_id)
        else:
            # Under a narrowed grant a read is a search by id within the grant, so a resource
            # outside it is simply not found: 404 whether or not it exists elsewhere.
            by_id = SearchClause("_id", "token", None, (TokenValue(None, resource_id),), raw=resource_id)
            page = self.run(SearchRequest(resource_type, clauses=(by_id,), count=1), access, "read")
            resource = page.resources[0] if page.resources else None
        if resource is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        return resource

    def search(self, resource_type: str, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool = False) -> dict:
        self._known(resource_type)
        pairs = list(params)
        request = parse_search(
            resource_type,
            pairs,
            self.catalogues[resource_type],
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
            catalogues=self.catalogues,
            restrictions=access.restrictions(resource_type, "search"),  # so a cursor is checked against them
        )
        # The page reports the ids its _include parameters point at, so each include is one lookup.
        forward = tuple(dict.fromkeys(i.param for i in request.includes if not i.reverse))
        page = self.run(replace(request, references=forward), access)
        included, warnings = fetch_includes(self._runner_for_others(access), request.includes, page)
        self_cursor = next((value for key, value in pairs if key == "_cursor" and value), None)
        return searchset(request, page, base_url, self_cursor, included=included, warnings=warnings)

    def everything(self, patient_id: str, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool = False) -> dict:
        """``Patient/{id}/$everything``: the patient's compartment across every served type, paged."""
        self._known("Patient")
        access.restrictions("Patient", "read")  # no grant on the Patient: 403, not an empty record
        pairs = list(params)
        request = parse_everything(
            patient_id, pairs, self.catalogues, strict=strict, default_count=self.default_count, max_count=self.max_count
        )
        self_cursor = next((value for key, value in pairs if key == "_cursor" and value), None)
        return everything(self._runner_for_others(access), self.catalogues, request, base_url, self_cursor)

    def capabilities(self, base_url: str) -> dict:
        return capability_statement(self.adapter, base_url, self.started, self.security)
