"""The façade's core: FHIR read and search over a legacy adapter. No web framework here.

Provider (web) → this service → adapter (mapping-compiled SQL) → row builders.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from facade.bundle import searchset
from facade.capability import capability_statement
from facade.errors import NotFound
from facade.search.parser import parse_search
from legacy_adapters.protocol import LegacyAdapter


class FhirService:
    def __init__(self, adapter: LegacyAdapter, *, default_count: int = 20, max_count: int = 1000, security=None):  # noqa: ANN001
        self.adapter = adapter
        self.security = security  # base URL → CapabilityStatement rest.security
        self.default_count = default_count
        self.max_count = max_count
        self.types = frozenset(adapter.resource_types())
        self.started = datetime.now(timezone.utc).replace(microsecond=0).isoformat()

    def _known(self, resource_type: str) -> None:
        if resource_type not in self.types:
            raise NotFound(f"Resource type '{resource_type}' is not served here")

    def read(self, resource_type: str, resource_id: str) -> dict:
        self._known(resource_type)
        resource = self.adapter.read(resource_type, resource_id)
        if resource is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        return resource

    def search(self, resource_type: str, params: Iterable[tuple[str, str]], base_url: str, *, strict: bool = False) -> dict:
        self._known(resource_type)
        pairs = list(params)
        request = parse_search(
            resource_type,
            pairs,
            self.adapter.search_params(resource_type),
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
        )
        page = self.adapter.search(request)
        self_cursor = next((value for key, value in pairs if key == "_cursor" and value), None)
        return searchset(request, page, base_url, self_cursor)

    def capabilities(self, base_url: str) -> dict:
        return capability_statement(self.adapter, base_url, self.started, self.security)
