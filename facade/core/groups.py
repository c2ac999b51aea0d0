"""FHIR Group from the mapping's ``groups``: each a name and its members as a Patient search.

Served beside the legacy types through the adapter contract (read, search by ``_id`` and
``name``), so a bulk client can see who a ``Group/[id]/$export`` covers. The service adds
(:meth:`GroupAdapter.with_members`) how many members the group has (``quantity``, one SQL count)
and lists them as ``member[]`` (one page of the Patient search) up to ``MEMBER_LIMIT``: a larger
group lists its first members and is tagged SUBSETTED, since a group may hold most of the
hospital. Both are narrowed by the reader's Patient access, so a Group never names a patient the
token may not read. The export walks the same search in batches (:meth:`GroupAdapter.members`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from urllib.parse import parse_qsl

from facade.core.subsetting import SUBSETTED
from facade.errors import CannotEnforce, FacadeError, NotFound, UnsupportedParameter
from facade.search.params import MissingValue, SearchParamDef, StringValue, TokenValue
from facade.search.parser import parse_search
from facade.search.request import SearchRequest
from legacy_adapters.protocol import Page

CATALOGUE = {
    "_id": SearchParamDef("_id", "token", description="Logical id of the group"),
    "name": SearchParamDef("name", "string", description="Start of the group's name"),
}
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MEMBER_LIMIT = 1000  # members listed in the resource; past it, Group/[id]/$export lists them all


class GroupAdapter:
    def __init__(
        self,
        groups: Mapping[str, Mapping[str, str]],
        patients: Mapping[str, SearchParamDef],
        query: Callable[[SearchRequest], Page],
        ids: Callable[[SearchRequest], Page] | None = None,
    ):
        """``patients``: the Patient search parameters; ``query``: answers a Patient search;
        ``ids``: the same search's ids alone (members are ids: no Patient needs building), if
        the adapter offers it."""
        self._query = ids or query
        self._members: dict[str, SearchRequest] = {}
        self._groups = dict(groups)
        for group_id, group in groups.items():
            if not _ID.match(group_id):
                raise ValueError(f"group id {group_id!r} is not a FHIR id")
            try:
                self._members[group_id] = parse_search("Patient", parse_qsl(group["members"]), patients, strict=True)
            except FacadeError as error:
                raise ValueError(f"group {group_id}: members {group['members']!r}: {error.diagnostics}") from None

    def resource_types(self) -> list[str]:
        return ["Group"] if self._groups else []

    def search_params(self, resource_type: str) -> dict[str, SearchParamDef]:
        return CATALOGUE

    def read(self, resource_type: str, resource_id: str) -> dict | None:
        group = self._groups.get(resource_id)
        return _resource(resource_id, group) if group is not None else None

    def search(self, request: SearchRequest) -> Page:
        if request.restrictions:
            raise CannotEnforce("Group cannot be searched under a narrowed grant")
        if request.ignored:
            raise UnsupportedParameter(f"Unknown or unsupported Group search parameter(s): {', '.join(request.ignored)}")
        found = sorted(self._groups)
        for clause in request.clauses:
            if clause.modifier == "missing":  # every group has an id and a name
                found = [] if any(isinstance(v, MissingValue) and v.missing for v in clause.values) else found
            elif clause.modifier:
                raise UnsupportedParameter(f"Group '{clause.name}' takes no modifier but :missing", expression=clause.name)
            elif clause.name == "_id":
                wanted = {v.code for v in clause.values if isinstance(v, TokenValue)}
                found = [g for g in found if g in wanted]
            else:
                starts = [v.value.lower() for v in clause.values if isinstance(v, StringValue)]
                found = [g for g in found if any(self._groups[g]["name"].lower().startswith(s) for s in starts)]
        start = found.index(request.cursor[0]) + 1 if request.cursor and request.cursor[0] in found else 0
        chosen = found[start : start + request.count]
        page = Page(resources=[_resource(g, self._groups[g]) for g in chosen])
        if request.total == "accurate" or request.summary_count:
            page.total = len(found)
        if start + request.count < len(found) and chosen:
            page.next_cursor = (chosen[-1],)
        return page

    def members(self, group_id: str, cursor: tuple | None, count: int) -> Page:
        """One page of the group's Patients (the membership itself: not narrowed by a token; the
        export narrows what it reads of each member's compartment)."""
        request = self._members.get(group_id)
        if request is None:
            raise NotFound(f"Group/{group_id} is not known")
        return self._query(replace(request, cursor=cursor, count=count))

    def is_mine(self, resource: dict) -> bool:
        return resource.get("resourceType") == "Group" and resource.get("id") in self._groups

    def with_members(self, resource: dict, narrow: Callable[[SearchRequest], SearchRequest | None]) -> dict:
        """The Group with its ``quantity`` and ``member[]``: two statements (a count and one page
        of the members' search), whatever the group's size. ``narrow``: the members' search as
        the reader may run it on Patient, or None when it may not (then neither is given)."""
        request = narrow(replace(self._members[resource["id"]], count=MEMBER_LIMIT, total="accurate"))
        if request is None:
            return resource
        page = self._query(request)
        listed = dict(resource)
        if page.next_cursor is not None:  # not every member is listed
            listed["meta"] = {**resource.get("meta", {}), "tag": [SUBSETTED]}
        listed["quantity"] = page.total or 0
        if page.resources:
            listed["member"] = [{"entity": {"reference": f"Patient/{patient['id']}"}} for patient in page.resources]
        return listed


def _resource(group_id: str, group: Mapping[str, str]) -> dict:
    return {"resourceType": "Group", "id": group_id, "type": "person", "actual": True, "name": group["name"]}
