"""One audit record per FHIR interaction, and one per token event.

The route names its interaction (:func:`begin`) before the service runs and hands over the
service's :class:`~facade.core.service.Result` (:func:`done`); after the response is made,
:func:`audit_response` appends the record. If it cannot be written, the response is
withheld (503), never sent unaudited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from flask import Response, g, has_request_context, request

from facade.audit.records import Interaction, rest_record, token_record
from facade.audit.store import AuditStore
from facade.core.service import Result
from facade.errors import UpstreamUnavailable
from facade.smart.events import TokenEvent
from facade.web.rendering import fhir_response
from facade.web.state import facade_state

log = logging.getLogger("facade.web.audit")


def begin(name: str, resource_type: str, *, resource_id: str | None = None, query: str | None = None, sandbox: dict | None = None) -> None:
    """This request is a FHIR interaction and must be audited, whatever its outcome. ``sandbox``:
    it is one of the de-identified API's (its policy and key id, recorded with it)."""
    g.interaction = Interaction(name, resource_type, resource_id, query)
    if sandbox is not None:
        g.sandbox = sandbox


def done(result: Result) -> Result:
    g.result = result
    return result


def audit_response(response: Response) -> Response:
    interaction = g.get("interaction")
    if interaction is None:
        return response  # not a FHIR data interaction (metadata, OpenAPI, unknown paths)
    access = g.get("access")
    result: Result | None = g.get("result")
    record = rest_record(
        interaction,
        response.status_code,
        access.grant if access is not None else None,
        ids=result.ids if result else (),
        patient=result.patient if result else None,
        source=request.remote_addr,
        request_id=g.get("request_id"),
        detail=result.detail if result else None,
        sandbox=g.get("sandbox"),
    )
    try:
        facade_state().audit.append(record)
    except Exception as error:  # noqa: BLE001 - any failure: withhold the response
        log.error("audit record could not be written (%s); response withheld", type(error).__name__)
        failure = UpstreamUnavailable("The access could not be audited; try again")
        return fhir_response(failure.to_outcome(), failure.status, headers=failure.headers)
    return response


def audit_token_events(store: AuditStore) -> Callable[[TokenEvent], None]:
    """A subscriber for the authorization server's events: they join the same chain."""

    def record(event: TokenEvent) -> None:
        if event.source is None and has_request_context():
            event = replace(event, source=request.remote_addr)
        store.append(token_record(event))

    return record
