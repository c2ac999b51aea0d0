"""``/fhir/AuditEvent``: the audit trail as FHIR, for holders of ``user/`` or ``system/`` AuditEvent scopes.

Search parameters: ``date`` (ge/gt/le/lt/eq prefixes), ``patient`` (reference),
``agent`` (the client id), ``_count``; newest first, keyset-paged.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import current_app, request
from flask_smorest import Blueprint

from facade.access.grant import LETTERS, Access
from facade.audit.auditevent import to_auditevent
from facade.audit.store import AuditStore
from facade.core.bundle import searchset
from facade.errors import Forbidden, InvalidRequest, NotFound
from facade.search.params import DateValue, Prefix, ReferenceValue, SearchParamDef, TokenValue
from facade.search.parser import parse_search
from facade.web.auth import note_result, request_access
from facade.web.rendering import fhir_response, negotiate
from facade.web.routes import base_url
from legacy_adapters.protocol import Page

CATALOGUE = {
    "date": SearchParamDef("date", "date", description="When the event was recorded"),
    "patient": SearchParamDef("patient", "reference", target="Patient", description="The patient the access concerned"),
    "agent": SearchParamDef("agent", "token", description="The client (client_id) that acted"),
}


def _store() -> AuditStore:
    return current_app.extensions["fhir_facade_audit"]


def _check(access: Access, interaction: str) -> None:
    """Only unfiltered user/ or system/ scopes reach the audit trail: it spans every patient."""
    if not access.enforced:
        return
    letter = LETTERS[interaction]
    if not any(s.context in ("user", "system") and s.query is None and s.covers("AuditEvent", letter) for s in access.grant.scopes.resource):
        raise Forbidden(f"{interaction} on AuditEvent needs a user/AuditEvent.{letter} or system/AuditEvent.{letter} scope", scope=f"system/AuditEvent.{letter}")


def make_audit_blueprint() -> Blueprint:
    blp = Blueprint("audit", __name__, url_prefix="/fhir", description="The audit trail as FHIR AuditEvent")

    @blp.route("/AuditEvent/<resource_id>", methods=["GET"])
    @blp.doc(summary="Read an AuditEvent", tags=["AuditEvent"])
    def read_AuditEvent(resource_id: str):  # noqa: ANN202, N802 - the endpoint name names the interaction
        media = negotiate(request)
        _check(request_access(base_url(request)), "read")
        record = _store().get(int(resource_id)) if resource_id.isdigit() and len(resource_id) < 19 else None
        if record is None:
            raise NotFound(f"AuditEvent/{resource_id} is not known")
        note_result([])
        return fhir_response(to_auditevent(record), media_type=media)

    @blp.route("/AuditEvent", methods=["GET"])
    @blp.doc(summary="Search AuditEvents by date, patient, agent", tags=["AuditEvent"])
    def search_AuditEvent():  # noqa: ANN202, N802
        media = negotiate(request)
        _check(request_access(base_url(request)), "search")
        pairs = list(request.args.items(multi=True))
        search = parse_search("AuditEvent", pairs, CATALOGUE, strict=True, max_count=1000)
        filters: dict = {}
        for clause in search.clauses:
            if len(clause.values) != 1 or clause.modifier:
                raise InvalidRequest(f"AuditEvent '{clause.name}' takes one value, without modifiers", expression=clause.name)
            value = clause.values[0]
            if isinstance(value, DateValue):
                _date_filter(filters, value)
            elif isinstance(value, ReferenceValue):
                filters["patient"] = value.id
            elif isinstance(value, TokenValue):
                filters["agent"] = value.code
        after = None
        if search.cursor is not None:
            if len(search.cursor) != 1 or not isinstance(search.cursor[0], int) or isinstance(search.cursor[0], bool):
                raise InvalidRequest("_cursor does not fit this search; follow the Bundle's links", expression="_cursor")
            after = search.cursor[0]
        records = _store().search(**filters, after_seq=after, limit=search.count + 1)
        page = Page(resources=[to_auditevent(r) for r in records[: search.count]])
        if len(records) > search.count:
            page.next_cursor = (records[search.count - 1]["seq"],)
        note_result(page.resources, query=request.query_string.decode(errors="replace"))
        return fhir_response(searchset(search, page, base_url(request), request.args.get("_cursor")), media_type=media)

    return blp


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
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
