"""The façade's core: FHIR read and search over a legacy adapter. No web framework here.

Provider (web) → this service → adapter (mapping-compiled SQL) → row builders.

Every search the service makes — the one asked for, each ``_include``/``_revinclude``
lookup, each type of ``$everything`` — is a :class:`SearchRequest` passed through
:meth:`FhirService.run`, the single place where every query can be narrowed further.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone

from facade.bundle import searchset
from facade.capability import capability_statement
from facade.errors import NotFound
from facade.everything import everything, parse_everything
from facade.includes import fetch_includes
from facade.search.parser import parse_search
from facade.search.request import SearchRequest
from facade.subsetting import element_sets
from legacy_adapters.protocol import LegacyAdapter, Page


class FhirService:
    def __init__(self, adapter: LegacyAdapter, *, default_count: int = 20, max_count: int = 1000):
        self.adapter = adapter
        self.default_count = default_count
        self.max_count = max_count
        self.types = frozenset(adapter.resource_types())
        self.catalogues = {t: adapter.search_params(t) for t in adapter.resource_types()}
        self.started = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        for resource_type in self.types:  # _summary/_elements tables, read once from the R4 definitions
            element_sets(resource_type)

    def run(self, request: SearchRequest) -> Page:
        """The one way the service asks the adapter for resources (searches, includes, $everything)."""
        return self.adapter.search(request)

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
            self.catalogues[resource_type],
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
            catalogues=self.catalogues,
        )
        # The page reports the ids its _include parameters point at, so each include is one lookup.
        forward = tuple(dict.fromkeys(i.param for i in request.includes if not i.reverse))
        page = self.run(replace(request, references=forward))
        included, warnings = fetch_includes(self.run, request.includes, page)
        self_cursor = next((value for key, value in pairs if key == "_cursor" and value), None)
        return searchset(request, page, base_url, self_cursor, included=included, warnings=warnings)

    def everything(self, patient_id: str, params: Iterable[tuple[str, str]], base_url: str, *, strict: bool = False) -> dict:
        """``Patient/{id}/$everything``: the patient's compartment across every served type, paged."""
        self._known("Patient")
        pairs = list(params)
        request = parse_everything(
            patient_id, pairs, self.catalogues, strict=strict, default_count=self.default_count, max_count=self.max_count
        )
        self_cursor = next((value for key, value in pairs if key == "_cursor" and value), None)
        return everything(self.run, self.catalogues, request, base_url, self_cursor)

    def capabilities(self, base_url: str) -> dict:
        return capability_statement(self.adapter, base_url, self.started)
