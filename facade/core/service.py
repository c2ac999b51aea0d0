"""The façade's core: FHIR read, search and ``$everything`` over adapters. No web framework here.

HTTP (facade/web) → this service → access (narrowing) → adapter (mapping-compiled SQL) → Bundle.

Every search the service makes — the one asked for, each ``_include``/``_revinclude``
lookup, each type of ``$everything`` — is a :class:`SearchRequest` narrowed by the
caller's :class:`Access` (``Access.narrow``) before it reaches an adapter: the single
place where a token's restrictions (patient compartment, granular scopes) join the SQL.
Each interaction returns a :class:`Result`: the body, and what the audit trail records.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from facade.access.grant import Access
from facade.core.bundle import searchset
from facade.core.capability import capability_statement
from facade.core.everything import everything
from facade.core.groups import GroupAdapter
from facade.core.includes import fetch_includes
from facade.core.subsetting import element_sets
from facade.errors import CannotEnforce, Forbidden, NotFound
from facade.search.cursor import resume
from facade.search.docref import docref_search
from facade.search.everything import parse_everything
from facade.search.params import SearchClause, TokenValue
from facade.search.parser import parse_search
from facade.search.request import SearchRequest
from legacy_adapters.protocol import EachSource, GroupSource, IdSource, LegacyAdapter, Page, ProfileSource

MAX_AUDITED_IDS = 1000  # resources named per audit record (a page is at most max_count)


@dataclass(frozen=True)
class Result:
    """What an interaction answered: the body, and for the audit trail the resources it returned
    (``Type/id``) and the patient it concerned."""

    body: dict
    ids: tuple[str, ...] = ()
    patient: str | None = None
    detail: dict | None = None  # what else the record names (an export's job id and counts)


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
        bulk: bool = False,
    ):
        """``adapter``: the legacy system; ``records``: the façade's own records (the audit trail),
        served beside it. ``security``: base URL → CapabilityStatement ``rest.security``."""
        self.adapter = adapter
        self._adapters = {t: adapter for t in adapter.resource_types()}
        if records is not None:
            self._adapters.update({t: records for t in records.resource_types()})
        groups = adapter.groups() if isinstance(adapter, GroupSource) and "Patient" in self._adapters else {}
        ids = adapter.search_ids if isinstance(adapter, IdSource) else None
        self.groups = GroupAdapter(groups, adapter.search_params("Patient") if groups else {}, adapter.search, ids)
        if groups and "Group" not in self._adapters:  # the mapping's groups, unless it maps Group itself
            self._adapters["Group"] = self.groups
        self.security = security
        self.terminology = terminology
        self.bulk = bulk
        self.default_count = default_count
        self.max_count = max_count
        self.types = frozenset(self._adapters)
        self.catalogues = {t: a.search_params(t) for t, a in self._adapters.items()}
        self.profiles = {t: a.profiles(t) for t, a in self._adapters.items() if isinstance(a, ProfileSource)}
        self.started = datetime.now(UTC).replace(microsecond=0).isoformat()
        for resource_type in adapter.resource_types():  # _summary/_elements tables, read once from the R4 definitions
            element_sets(resource_type)

    def offering(self, offer: Mapping[str, Collection[str]], *, security: Callable[[str], dict] | None = None) -> FhirService:
        """A view of this service serving only the types and search parameters in ``offer``
        (type → parameter names), over the same adapters: its catalogues, so its parser,
        CapabilityStatement and ``$everything``, know nothing else (the sandbox). No terminology
        endpoints; ``security``: its CapabilityStatement's ``rest.security``."""
        view = copy.copy(self)
        view.security = security
        view.terminology = False
        view._adapters = {t: a for t, a in self._adapters.items() if t in offer}
        view.types = frozenset(view._adapters)
        view.catalogues = {t: {n: d for n, d in self.catalogues[t].items() if n in offer[t]} for t in view.types}
        return view

    # -- the one query path -----------------------------------------------------------------

    def _query(self, request: SearchRequest) -> Page:
        """An already narrowed request, answered by the adapter serving its type."""
        return self._adapters[request.resource_type].search(request)

    def run(self, request: SearchRequest, access: Access, interaction: str = "search") -> Page:
        """Narrow ``request`` for ``access``, then answer it (includes, ``$everything``'s types)."""
        return self._query(access.narrow(request, interaction))

    def query_narrowed(self, request: SearchRequest, each: Callable[[dict], object] | None = None) -> Page:
        """A request ``Access.narrow`` has already narrowed (the bulk export adds its
        ``_typeFilter`` group after the token's restrictions). ``each``: given every resource
        of the page in order instead of the page's ``resources`` (as soon as it is built, when
        the adapter can)."""
        if each is None:
            return self._query(request)
        adapter = self._adapters[request.resource_type]
        if isinstance(adapter, EachSource):
            return adapter.search_each(request, each)
        page = adapter.search(request)
        for resource in page.resources:
            each(resource)
        page.resources = []
        return page

    def group_members(self, group_id: str, cursor: tuple | None, count: int) -> Page:
        """A page of a mapped group's Patients (for ``Group/[id]/$export``)."""
        return self.groups.members(group_id, cursor, count)

    def _group_members(self, resource: dict, access: Access) -> dict:
        """A mapping's Group with the members this token may read (others: unchanged)."""
        if self._adapters.get("Group") is not self.groups or not self.groups.is_mine(resource):
            return resource

        def narrow(request: SearchRequest) -> SearchRequest | None:
            try:
                return access.narrow(request, "search")
            except (Forbidden, CannotEnforce):  # the token reads no Patient (or cannot here): no members
                return None

        return self.groups.with_members(resource, narrow)

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
        _possible_id(resource_type, resource_id)
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
        resource = self._group_members(resource, access)
        return Result(resource, _returned([resource]), resource_id if resource_type == "Patient" else None)

    def search(
        self,
        resource_type: str,
        params: Iterable[tuple[str, str]],
        base_url: str,
        access: Access,
        *,
        strict: bool = False,
        translate: Callable[[SearchRequest], SearchRequest] | None = None,
    ) -> Result:
        """``translate``: applied to the parsed request before it is narrowed (the sandbox's
        pseudonyms and shifted dates → legacy values; the links keep the client's own)."""
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
        if translate is not None:
            parsed = translate(parsed)
        # Narrowed once; the cursor is checked against the query as it runs, restrictions included.
        request = resume(access.narrow(parsed, "search"))
        # The page reports the ids its _include parameters point at, so each include is one lookup.
        forward = tuple(dict.fromkeys(i.param for i in request.includes if not i.reverse))
        page = self._query(replace(request, references=forward) if forward else request)
        page.resources = [self._group_members(r, access) for r in page.resources]
        included, warnings = fetch_includes(self._runner_for_others(access), request.includes, page)
        bundle = searchset(request, page, base_url, included=included, warnings=warnings)
        return Result(bundle, _returned([*page.resources, *included]))

    def everything(
        self, patient_id: str, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool = False
    ) -> Result:
        """``Patient/{id}/$everything``: the patient's compartment across every served type, paged."""
        self._known("Patient")
        access.restrictions("Patient", "read")  # no grant on the Patient: 403, not an empty record
        _possible_id("Patient", patient_id)
        request = parse_everything(
            patient_id, params, self.catalogues, strict=strict, default_count=self.default_count, max_count=self.max_count
        )
        bundle = everything(self._runner_for_others(access), self.catalogues, request, base_url)
        matches = [e["resource"] for e in bundle.get("entry", ()) if e.get("search", {}).get("mode") != "outcome"]
        return Result(bundle, _returned(matches), patient_id)

    def docref(self, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool = False) -> Result:
        """``DocumentReference/$docref``: the patient's stored documents as a DocumentReference search."""
        self._known("DocumentReference")
        pairs = docref_search(params, self.catalogues["DocumentReference"])
        return self.search("DocumentReference", pairs, base_url, access, strict=strict)

    def capabilities(self, base_url: str) -> dict:
        return capability_statement(
            self.catalogues,
            base_url,
            self.started,
            self.security,
            terminology=self.terminology,
            bulk=self.bulk,
            profiles=self.profiles,
        )

    # -- for the authorization server's patient picker (a signed-in clinician, before any token) --

    def read_for_system(self, resource_type: str, resource_id: str) -> dict:
        return self.read(resource_type, resource_id, Access.unrestricted()).body

    def search_for_system(self, resource_type: str, params: Iterable[tuple[str, str]]) -> list[dict]:
        bundle = self.search(resource_type, params, "", Access.unrestricted()).body
        return [entry["resource"] for entry in bundle.get("entry", ()) if entry.get("search", {}).get("mode") == "match"]


def _possible_id(resource_type: str, resource_id: str) -> None:
    """No resource has an id with a NUL in it (PostgreSQL cannot even be asked): not found."""
    if "\x00" in resource_id:
        raise NotFound(f"{resource_type}/{resource_id.replace(chr(0), '')} is not known")
