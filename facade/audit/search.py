"""The audit trail as FHIR ``AuditEvent``, answered through the same contract as a legacy
adapter (legacy_adapters/protocol.py), so reads and searches of it take the service's one
path: parsing, authorization (facade/access: only user/ or system/ scopes without a filter),
paging cursors and Bundles.

Search parameters: ``date`` (eq, ge, gt, le, lt), ``patient`` (reference), ``agent`` (the
client id), ``_count``; newest first, keyset-paged on the record's sequence number.
"""

from __future__ import annotations

from datetime import UTC, datetime

from facade.audit.auditevent import to_auditevent
from facade.audit.store import AuditStore
from facade.errors import InvalidRequest, UnsupportedParameter
from facade.search.params import DateValue, Prefix, ReferenceValue, SearchParamDef, SortKey, TokenValue
from facade.search.request import SearchRequest
from legacy_adapters.protocol import Page

RESOURCE_TYPE = "AuditEvent"
CATALOGUE = {
    "_id": SearchParamDef("_id", "token", description="The record's sequence number"),
    "date": SearchParamDef("date", "date", description="When the event was recorded"),
    "patient": SearchParamDef("patient", "reference", target="Patient", description="The patient the access concerned"),
    "agent": SearchParamDef("agent", "token", description="The client (client_id) that acted"),
}
NEWEST_FIRST = (SortKey("date", descending=True),)


class AuditEventAdapter:
    def __init__(self, store: AuditStore):
        self.store = store

    def resource_types(self) -> list[str]:
        return [RESOURCE_TYPE]

    def search_params(self, resource_type: str) -> dict[str, SearchParamDef]:
        return CATALOGUE

    def read(self, resource_type: str, resource_id: str) -> dict | None:
        record = self.store.get(int(resource_id)) if resource_id.isascii() and resource_id.isdigit() and len(resource_id) < 19 else None
        return to_auditevent(record) if record is not None else None

    def search(self, request: SearchRequest) -> Page:
        if request.restrictions:  # Access grants the trail whole or not at all
            raise InvalidRequest("AuditEvent cannot be searched under a narrowed grant")
        if request.ignored:  # a misspelt filter must not return the whole trail
            raise UnsupportedParameter(f"Unknown or unsupported AuditEvent search parameter(s): {', '.join(request.ignored)}")
        filters: dict = {}
        for clause in request.clauses:
            if len(clause.values) != 1 or clause.modifier:
                raise InvalidRequest(f"AuditEvent '{clause.name}' takes one value, without modifiers", expression=clause.name)
            value = clause.values[0]
            if clause.name == "_id" and isinstance(value, TokenValue):
                if not (value.code or "").isdigit():
                    return Page()
                filters["seq"] = int(value.code or 0)
            elif isinstance(value, DateValue):
                _date_filter(filters, value)
            elif isinstance(value, ReferenceValue):
                filters["patient"] = value.id
            elif isinstance(value, TokenValue):
                filters["agent"] = value.code
        after = None
        if request.cursor is not None:
            if request.before or len(request.cursor) != 1 or type(request.cursor[0]) is not int:
                raise InvalidRequest("_cursor does not fit this search; follow the Bundle's links", expression="_cursor")
            after = request.cursor[0]
        page = Page()
        if request.total == "accurate" or request.summary_count:
            page.total = self.store.count(**filters)
        if request.summary_count:
            return page
        records = self.store.search(**filters, after_seq=after, limit=request.count + 1)
        page.resources = [to_auditevent(r) for r in records[: request.count]]
        page.references = {
            name: [r["patient"] for r in records[: request.count] if r.get("patient")] for name in request.references if name == "patient"
        }
        if len(records) > request.count:
            page.next_cursor = (records[request.count - 1]["seq"],)
        return page


def _date_filter(filters: dict, value: DateValue) -> None:
    low, high = _iso(value.low), _iso(value.high)
    if value.prefix == Prefix.EQ:
        filters["since"], filters["before"] = low, high
    elif value.prefix in (Prefix.GE, Prefix.GT):
        filters["since"] = low if value.prefix == Prefix.GE else high
    elif value.prefix in (Prefix.LT, Prefix.LE):
        filters["before"] = low if value.prefix == Prefix.LT else high
    else:
        raise InvalidRequest(f"AuditEvent date does not support the '{value.prefix.value}' prefix", expression="date")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
