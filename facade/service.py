"""The façade's core: FHIR read and search over a legacy adapter. No web framework here.

Provider (web) → this service → adapter (mapping-compiled SQL) → row builders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone

from facade.access.grant import Access

from facade.bundle import searchset
from facade.capability import capability_statement
from facade.errors import NotFound
from facade.search.params import SearchClause, TokenValue
from facade.search.parser import parse_search
from facade.search.request import SearchRequest
from legacy_adapters.protocol import LegacyAdapter


class FhirService:
    def __init__(self, adapter: LegacyAdapter, *, default_count: int = 20, max_count: int = 1000):
        self.adapter = adapter
        self.default_count = default_count
        self.max_count = max_count
        self.types = frozenset(adapter.resource_types())
        self.started = datetime.now(timezone.utc).replace(microsecond=0).isoformat()

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
            page = self._run(SearchRequest(resource_type, clauses=(by_id,), count=1), access, "read")
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
            self.adapter.search_params(resource_type),
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
            restrictions=access.restrictions(resource_type, "search"),  # so a cursor is checked against them
        )
        page = self._run(request, access)
        self_cursor = next((value for key, value in pairs if key == "_cursor" and value), None)
        return searchset(request, page, base_url, self_cursor)

    def _run(self, request: SearchRequest, access: Access, interaction: str = "search"):  # noqa: ANN202 - Page
        """Every search the service runs goes through here, so the grant narrows all of them:
        the client's query, paging, and any search made on its behalf."""
        restrictions = access.restrictions(request.resource_type, interaction)
        if request.restrictions != restrictions:
            request = replace(request, restrictions=restrictions)
        return self.adapter.search(request)

    def capabilities(self, base_url: str) -> dict:
        return capability_statement(self.adapter, base_url, self.started)
