"""The façade's core: FHIR read, search and ``$everything`` over adapters. No web framework here.

HTTP (facade/web) → this service → access (narrowing) → adapter (mapping-compiled SQL) → Bundle.

Every search the service makes — the one asked for, each ``_include``/``_revinclude``
lookup, each type of ``$everything`` — is a :class:`SearchRequest` narrowed by the
caller's :class:`Access` (``Access.narrow``) before it reaches an adapter: the single
place where a token's restrictions (patient compartment, granular scopes) join the SQL.
Each interaction returns a :class:`Result`: the body, and what the audit trail records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from facade.access.grant import Access
from facade.core.bundle import searchset
from facade.core.capability import capability_statement
from facade.core.everything import everything
from facade.core.includes import fetch_includes
from facade.core.subsetting import element_sets
from facade.errors import Forbidden, NotFound
from facade.search.cursor import resume
from facade.search.everything import parse_everything
from facade.search.params import SearchClause, TokenValue
from facade.search.parser import parse_search
from facade.search.request import SearchRequest
from legacy_adapters.protocol import LegacyAdapter, Page, ProfileSource

MAX_AUDITED_IDS = 1000  # resources named per audit record (a page is at most max_count)


@dataclass(frozen=True)
class Result:
    """What an interaction answered: the body, and for the audit trail the resources it returned
    (``Type/id``) and the patient it concerned."""

    body: dict
    ids: tuple[str, ...] = ()
    patient: str | None = None


def _returned(resources: Iterable[dict]) -> tuple[str, ...]:
    return tuple(f"{r['resourceType']}/{r['id']}" for r, _ in zip(resources, range(MAX_AUDITED_IDS)))


class FhirService:
    def __init__(
        self,
        adapter: LegacyAdapter,
        *,
        records: LegacyAdapter | None = None,
        default_count: int = 20,
        max_count: int = 1000,
        security: Callable[[str], dict] | None = None,
        terminology: bool = False,
    ):
        """``adapter``: the legacy system; ``records``: the façade's own records (the audit trail),
        served beside it. ``security``: base URL → CapabilityStatement ``rest.security``."""
        self.adapter = adapter
        self._adapters = {t: adapter for t in adapter.resource_types()}
        if records is not None:
            self._adapters.update({t: records for t in records.resource_types()})
        self.security = security
        self.terminology = terminology
        self.default_count = default_count
        self.max_count = max_count
        self.types = frozenset(self._adapters)
        self.catalogues = {t: a.search_params(t) for t, a in self._adapters.items()}
        self.profiles = {t: a.profiles(t) for t, a in self._adapters.items() if isinstance(a, ProfileSource)}
        self.started = datetime.now(UTC).replace(microsecond=0).isoformat()
        for resource_type in adapter.resource_types():  # _summary/_elements tables, read once from the R4 definitions
            element_sets(resource_type)

    # -- the one query path -----------------------------------------------------------------

    def _query(self, request: SearchRequest) -> Page:
        """An already narrowed request, answered by the adapter serving its type."""
        return self._adapters[request.resource_type].search(request)

    def run(self, request: SearchRequest, access: Access, interaction: str = "search") -> Page:
        """Narrow ``request`` for ``access``, then answer it (includes, ``$everything``'s types)."""
        return self._query(access.narrow(request, interaction))

    def _runner_for_others(self, access: Access) -> Callable[[SearchRequest], Page]:
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

    # -- interactions ---------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str, access: Access) -> Result:
        self._known(resource_type)
        if not access.restrictions(resource_type, "read"):
            resource = self._adapters[resource_type].read(resource_type, resource_id)
        else:
            # Under a narrowed grant a read is a search by id within the grant, so a resource
            # outside it is simply not found: 404 whether or not it exists elsewhere.
            by_id = SearchClause("_id", "token", None, (TokenValue(None, resource_id),), raw=resource_id)
            page = self.run(SearchRequest(resource_type, clauses=(by_id,), count=1), access, "read")
            resource = page.resources[0] if page.resources else None
        if resource is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        return Result(resource, _returned([resource]), resource_id if resource_type == "Patient" else None)

    def search(
        self, resource_type: str, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool = False
    ) -> Result:
        self._known(resource_type)
        parsed = parse_search(
            resource_type,
            params,
            self.catalogues[resource_type],
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
            catalogues=self.catalogues,
        )
        # Narrowed once; the cursor is checked against the query as it runs, restrictions included.
        request = resume(access.narrow(parsed, "search"))
        # The page reports the ids its _include parameters point at, so each include is one lookup.
        forward = tuple(dict.fromkeys(i.param for i in request.includes if not i.reverse))
        page = self._query(replace(request, references=forward) if forward else request)
        included, warnings = fetch_includes(self._runner_for_others(access), request.includes, page)
        bundle = searchset(request, page, base_url, included=included, warnings=warnings)
        return Result(bundle, _returned([*page.resources, *included]))

    def everything(
        self, patient_id: str, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool = False
    ) -> Result:
        """``Patient/{id}/$everything``: the patient's compartment across every served type, paged."""
        self._known("Patient")
        access.restrictions("Patient", "read")  # no grant on the Patient: 403, not an empty record
        request = parse_everything(
            patient_id, params, self.catalogues, strict=strict, default_count=self.default_count, max_count=self.max_count
        )
        bundle = everything(self._runner_for_others(access), self.catalogues, request, base_url)
        matches = [e["resource"] for e in bundle.get("entry", ()) if e.get("search", {}).get("mode") != "outcome"]
        return Result(bundle, _returned(matches), patient_id)

    def capabilities(self, base_url: str) -> dict:
        return capability_statement(
            self.catalogues, base_url, self.started, self.security, terminology=self.terminology, profiles=self.profiles
        )

    # -- for the authorization server's patient picker (a signed-in clinician, before any token) --

    def read_for_system(self, resource_type: str, resource_id: str) -> dict:
        return self.read(resource_type, resource_id, Access.unrestricted()).body

    def search_for_system(self, resource_type: str, params: Iterable[tuple[str, str]]) -> list[dict]:
        bundle = self.search(resource_type, params, "", Access.unrestricted()).body
        return [entry["resource"] for entry in bundle.get("entry", ()) if entry.get("search", {}).get("mode") == "match"]
