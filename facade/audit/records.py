"""The two kinds of audit record, built from what the interaction already knows.

``rest``: one per FHIR interaction (who, what, which resources, the outcome);
``token``: one per token event of the authorization server (facade/smart/events.py).
Records hold ids and the query, never resource contents; the store chains them.
"""

from __future__ import annotations

from dataclasses import dataclass

from facade.access.grant import Grant
from facade.smart.events import TokenEvent


@dataclass(frozen=True)
class Interaction:
    """What the route serving a request is doing: known where the route is, before the
    service runs, so a refused or failed interaction is recorded as what it tried to be."""

    name: str  # read | search | everything | export …
    resource_type: str
    resource_id: str | None = None
    query: str | None = None  # the query as received (searches): it names what was asked for


def rest_record(
    interaction: Interaction,
    status: int,
    grant: Grant | None,
    *,
    ids: tuple[str, ...] = (),
    patient: str | None = None,
    source: str | None = None,
    request_id: str | None = None,
    detail: dict | None = None,
    sandbox: dict | None = None,
) -> dict:
    """``sandbox``: for the de-identified API, its policy and key id (the client's purpose joins them)."""
    record = {
        "kind": "rest",
        "interaction": interaction.name,
        "resource_type": interaction.resource_type,
        "status": status,
        "source": source,
        "client_id": grant.client_id if grant else None,
        "subject": grant.subject if grant else None,
        "fhir_user": grant.fhir_user if grant else None,
        "token_id": grant.token_id if grant else None,
        "patient": (grant.patient if grant else None) or patient,
        "ids": list(ids),
        "request_id": request_id,  # the X-Request-ID of the exchange: joins the record to log lines
    }
    if detail:
        record["detail"] = detail  # an export's job id, file and counts
    if sandbox is not None:
        record["sandbox"] = {**sandbox, "purpose": grant.purpose if grant else None}
    if interaction.query is not None:
        record["query"] = interaction.query
    elif interaction.resource_id is not None and not ids:
        record["ids"] = [f"{interaction.resource_type}/{interaction.resource_id}"]
    return record


def token_record(event: TokenEvent) -> dict:
    return {
        "kind": "token",
        "event": f"token-{event.action}",
        "status": 400 if event.failed else 200,
        "client_id": event.client_id,
        "subject": event.user,
        "fhir_user": None,
        "patient": None,
        "token_id": event.jti,
        "scope": event.scope,
        "source": event.source,
        "reason": event.error,
    }
