"""An audit record as a FHIR R4 AuditEvent (https://hl7.org/fhir/R4/auditevent.html)."""

from __future__ import annotations

import base64
from typing import Any

CLIENT_SYSTEM = "urn:fhir-facade:client-id"
_REST: dict[str, Any] = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}
_LOGIN: dict[str, Any] = {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"}
_ACTIONS = {"read": "R", "vread": "R", "search": "E", "create": "C", "update": "U", "delete": "D"}


def outcome_code(status: int) -> str:
    """0 success, 4 minor failure (the client's), 8 serious failure (ours)."""
    return "0" if status < 400 else "4" if status < 500 else "8"


def to_auditevent(record: dict) -> dict:
    token_event = record.get("kind") == "token"
    status = int(record.get("status", 200))
    event: dict = {
        "resourceType": "AuditEvent",
        "id": str(record["seq"]),
        "type": _LOGIN if token_event else _REST,
        "subtype": [
            {"system": "urn:fhir-facade:token-event", "code": str(record.get("event", "unknown"))}
            if token_event
            else {"system": "http://hl7.org/fhir/restful-interaction", "code": record.get("interaction", "read")}
        ],
        "action": "E" if token_event else _ACTIONS.get(record.get("interaction", ""), "E"),
        "recorded": record["recorded"],
        "outcome": outcome_code(status),
        "outcomeDesc": f"HTTP {status}" + (f": {record['reason']}" if record.get("reason") else ""),
        "agent": [_agent(record)],
        "source": {
            "observer": {"display": "fhir-facade"},
            "type": [
                {"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}
            ],
        },
    }
    if record.get("kind") == "spool":  # a spool line that was not a record: say so, claim nothing else
        event.pop("subtype")
        event.update(outcome="8", outcomeDesc=f"{record.get('error', 'unreadable spool line')}: {record.get('line', '')}"[:1000])
    entities: list[dict[str, Any]] = []
    if record.get("patient"):
        entities.append(
            {
                "what": {"reference": f"Patient/{record['patient']}"},
                "type": _entity_type("1", "Person"),
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
            }
        )
    for reference in record.get("ids") or ():
        entities.append({"what": {"reference": reference}, "type": _entity_type("2", "System Object")})
    if record.get("query") is not None:
        query = f"{record.get('resource_type', '')}?{record['query']}"
        entities.append({"type": _entity_type("2", "System Object"), "query": base64.b64encode(query.encode()).decode()})
    if entities:
        event["entity"] = entities
    return event


def _agent(record: dict) -> dict:
    agent: dict = {"requestor": True}
    client_id = record.get("client_id")
    if record.get("fhir_user"):
        agent["who"] = {"reference": record["fhir_user"]}
        if client_id:
            agent["altId"] = client_id
    elif client_id:
        agent["who"] = {"identifier": {"system": CLIENT_SYSTEM, "value": client_id}}
    else:
        agent["who"] = {"display": "unauthenticated"}
    if record.get("subject"):
        agent["name"] = record["subject"]
    if record.get("source"):
        agent["network"] = {"address": record["source"], "type": "2"}
    return agent


def _entity_type(code: str, display: str) -> dict:
    return {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": code, "display": display}
