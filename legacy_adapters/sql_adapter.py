"""The generic SQL adapter: a mapping file plus a read-only engine answer FHIR reads and searches.

Binding (reflecting tables, compiling builders) happens on first use and is
retried while the database is unreachable, so the server can start before the
legacy database does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import sqlalchemy as sa
from cachetools import TTLCache

from facade.errors import FacadeError
from facade.search.params import SearchParamDef
from facade.search.request import SearchRequest
from legacy_adapters.code_tables import LegacyCodeTables
from legacy_adapters.engines import legacy_errors
from legacy_adapters.mapping.binder import BoundResource, Branch, bind_mapping
from legacy_adapters.mapping.compiler import (
    PageQuery,
    branch_filters,
    compile_count,
    compile_page,
    compile_read,
    cursor_params,
    cursor_shape,
)
from legacy_adapters.mapping.loader import MappingSpec, claimed_profiles
from legacy_adapters.mapping.values import split_collection
from legacy_adapters.prepared import Prepared, Shapes
from legacy_adapters.protocol import Page
from terminology.registry import Terminology

PLAN_SECONDS = 60

# A compiled plan and its statement prepared for this adapter's engine (None: no branch can match).
_Plan = tuple[PageQuery, Prepared | None]


class SqlAdapter:
    def __init__(self, mapping: MappingSpec, engine: sa.Engine):
        self.mapping = mapping
        self.engine = engine
        self._bound: dict[str, BoundResource] | None = None
        self._lock = threading.Lock()
        self._nulls_last = engine.dialect.name in ("postgresql", "oracle")
        self._read_plans: dict[tuple, _Plan] = {}
        # Plans embed what code-table lookups answered when they were built, so they live a
        # minute: a code-table edit shows up within its refresh period plus that minute.
        self._page_plans: TTLCache = TTLCache(maxsize=1024, ttl=PLAN_SECONDS)
        self._plans_lock = threading.Lock()
        self._shapes = Shapes(engine.dialect)

    # -- capabilities -------------------------------------------------------
    def resource_types(self) -> list[str]:
        return list(self.mapping.resources)

    def search_params(self, resource_type: str) -> dict[str, SearchParamDef]:
        return self.mapping.resources[resource_type].params

    def groups(self) -> dict[str, dict[str, str]]:
        return self.mapping.groups

    def profiles(self, resource_type: str) -> list[str]:
        return claimed_profiles(self.mapping.resources[resource_type])

    def terminology(self) -> Terminology | None:
        return self.mapping.terminology

    def code_tables(self) -> LegacyCodeTables | None:
        terminology = self.mapping.terminology
        return LegacyCodeTables(self.engine, terminology.code_tables) if terminology is not None else None

    def ready(self) -> None:
        """The mapping is bound to the tables and the database answers a trivial statement."""
        self.bound()
        with legacy_errors(), self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def explain_sql(self, request: SearchRequest) -> dict[str, str]:
        """The WHERE clause each source (and variant) would run for ``request``, for reviewers
        (``fhir-facade scopes explain``): literal values where the dialect can render them."""
        explained = {}
        for branch, where in branch_filters(self.bound()[request.resource_type], request):
            label = branch.source.name + (f" ({branch.variant})" if branch.variant else "")
            try:
                explained[label] = str(where.compile(self.engine, compile_kwargs={"literal_binds": True}))
            except Exception:  # noqa: BLE001 - some types cannot render literally; show the parameters instead
                explained[label] = str(where.compile(self.engine))
        return explained

    # -- binding ------------------------------------------------------------
    def bound(self) -> dict[str, BoundResource]:
        if self._bound is None:
            with self._lock:
                if self._bound is None:
                    with legacy_errors(), self.engine.connect() as connection:
                        self._bound = bind_mapping(self.mapping, connection)
        return self._bound

    # -- interactions -------------------------------------------------------
    def read(self, resource_type: str, resource_id: str) -> dict | None:
        resource = self.bound()[resource_type]
        branch_indexes: list[int] = []
        params: dict[str, object] = {}
        for branch in resource.branches:
            parts = branch.id.parse(resource_id)
            if parts is not None:  # this branch could hold the id
                branch_indexes.append(branch.index)
                params.update({f"b{branch.index}_{i}": part for i, part in enumerate(parts)})
        if not branch_indexes:
            return None
        key = (resource_type, tuple(branch_indexes))
        plan = self._read_plans.get(key)
        if plan is None:  # one plan per type and set of branches, reused for every id
            plan = self._read_plans[key] = self._plan(compile_read(resource, key[1]))
        query, statement = plan
        assert statement is not None  # read plans are built only for branches that can hold the id
        with legacy_errors(), self.engine.connect() as connection:
            rows = statement.rows(connection, params)
        if not rows:
            return None
        row = rows[0]
        branch = resource.branches[row[query.meta]]
        return _to_resource(resource_type, branch, row, query.layout[branch.index], query.meta)

    def search(self, request: SearchRequest) -> Page:
        return self._search(request, ids_only=False)

    def search_each(self, request: SearchRequest, each: Callable[[dict], object]) -> Page:
        """The page ``search`` answers, each resource given to ``each`` as it is built, not kept:
        a page of built resources alive at once is thousands of dicts the garbage collector
        walks again and again, which an export that encodes each one at once never needs."""
        return self._search(request, ids_only=False, each=each)

    def search_ids(self, request: SearchRequest) -> Page:
        """The page ``search`` answers, its resources holding their type and id alone: one
        statement selecting the ids, no columns read to build them (a Group's members)."""
        return self._search(request, ids_only=True)

    def _search(self, request: SearchRequest, *, ids_only: bool, each: Callable[[dict], object] | None = None) -> Page:
        resource = self.bound()[request.resource_type]
        page = Page()
        with legacy_errors(), self.engine.connect() as connection:
            if request.total == "accurate" or request.summary_count:
                count = compile_count(resource, request)
                page.total = connection.execute(count).scalar_one() if count is not None else 0
            if request.summary_count:
                return page
            query, statement = self._page_plan(resource, request, ids_only)
            if statement is None:
                return page
            rows = statement.rows(connection, cursor_params(request.cursor))
        more = len(rows) > request.count
        rows = rows[: request.count]
        if query.reversed:  # read backwards from the cursor: put the page in its order again
            rows = rows[::-1]
        branches = resource.branches
        resource_type = request.resource_type
        meta = query.meta
        refs = query.references
        page.references = {name: [] for name in request.references}
        if ids_only:
            page.resources = [{"resourceType": resource_type, "id": branches[row[meta]].id.render(row[meta + 1])} for row in rows]
        keep = page.resources.append if each is None else each
        for row in () if ids_only else rows:
            branch = branches[row[meta]]
            keep(_to_resource(resource_type, branch, row, query.layout[branch.index], meta))
            for j, name in enumerate(request.references):
                value = row[refs + j]
                if value is None:
                    continue
                if j in query.listed:  # a collection's ids, joined in one column
                    page.references[name].extend(split_collection(value))
                else:
                    page.references[name].append(str(value))
        if not rows:
            return page

        def position(row: tuple) -> tuple:
            return tuple(_jsonable(v) for v in (*row[meta + 2 : refs], row[meta], row[meta + 1]))

        # Forwards, rows precede the page when it has a cursor; backwards, the page came from
        # its cursor, so rows follow it.
        if more if query.reversed else request.cursor is not None:
            page.previous_cursor = position(rows[0])
        if request.cursor is not None if query.reversed else more:
            page.next_cursor = position(rows[-1])
        return page

    def _plan(self, query: PageQuery) -> _Plan:
        """The plan kept: its statement prepared, its SQL compiled once per shape (another
        patient's same search is the same SQL), and its expression tree (tens of KB for a page
        over several sources, hundreds of plans cached) let go."""
        prepared = self._shapes.prepare(query.statement) if query.statement is not None else None
        return replace(query, statement=None), prepared

    def _page_plan(self, resource: BoundResource, request: SearchRequest, ids_only: bool = False) -> _Plan:
        """The statement for a page. Every page after the first of a search differs only in its
        cursor values, which are bound, so a walk through all pages builds one statement, not one
        per page. Keyed by the full query text (clauses, including any added by authorization)."""
        terminology = self.mapping.terminology  # a crosswalk reload makes plans with old code lists stale
        generation = terminology.generation if terminology else 0
        key = (request.canonical(), request.count, cursor_shape(request.cursor), request.before, request.references, generation, ids_only)
        with self._plans_lock:
            plan = self._page_plans.get(key)
        if plan is None:
            query = compile_page(resource, request, request.count + 1, nulls_last_by_default=self._nulls_last, ids_only=ids_only)
            plan = self._plan(query)
            with self._plans_lock:
                self._page_plans[key] = plan
        return plan


def _to_resource(resource_type: str, branch: Branch, row: tuple, offset: int, meta: int) -> dict:
    local = row[offset : offset + len(branch.source.columns)]
    resource: dict = {"resourceType": resource_type, "id": branch.id.render(row[meta + 1])}
    if branch.last_updated is not None:
        last_updated = branch.last_updated(local)
        if last_updated:
            resource["meta"] = {"lastUpdated": last_updated}
    body = branch.build(local)
    if body:
        if "meta" in body and "meta" in resource:  # the mapping's meta (profile) next to lastUpdated
            body["meta"] = {**resource["meta"], **body["meta"]}
        resource.update(body)
    return resource


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise FacadeError(f"cannot page on a sort key of type {type(value).__name__}")
