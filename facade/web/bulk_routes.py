"""Bulk Data ``$export`` over HTTP: kick-off, status poll, file download, cancel (facade/bulk).

    GET|POST /fhir/$export, /fhir/Patient/$export, /fhir/Group/<id>/$export   → 202 + Content-Location
    GET      /fhir/$export-poll/<job>        → 202 + X-Progress + Retry-After, then 200 manifest + Expires
    DELETE   /fhir/$export-poll/<job>        → 202, then 404
    GET      /fhir/$export-file/<job>/<file> → NDJSON (gzip when asked)

Each is audited like a FHIR interaction, with the job id and the counts.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

from flask import Request, Response, request
from flask_smorest import Blueprint

from facade.access.grant import Access
from facade.bulk.exports import POLL_SECONDS, BulkExports, Status, counts
from facade.core.service import Result
from facade.errors import InvalidRequest, UnsupportedMediaType, operation_outcome
from facade.web import audit_hook, openapi_docs
from facade.web.auth import request_access
from facade.web.compression import accepts_gzip
from facade.web.rendering import add_vary, fhir_response
from facade.web.state import facade_state

FORM = openapi_docs.FORM
CHUNK = 256 * 1024


def _bulk() -> BulkExports:
    bulk = facade_state().bulk
    assert bulk is not None
    return bulk


def _base() -> str:
    return facade_state().settings.public_base_url


def prefer(req: Request) -> list[str]:
    return [p.strip().lower() for p in req.headers.get("Prefer", "").split(",") if p.strip()]


def kickoff_pairs(req: Request) -> list[tuple[str, str]]:
    """Query parameters, plus a POSTed Parameters resource (``patient`` as valueReference)."""
    pairs = list(req.args.items(multi=True))
    if req.method != "POST" or not req.content_length:
        return pairs
    if req.mimetype == FORM:
        return pairs + list(req.form.items(multi=True))
    if req.mimetype not in ("application/fhir+json", "application/json"):
        raise UnsupportedMediaType(f"POST $export takes a FHIR Parameters resource, not {req.mimetype or 'no content type'}")
    body = req.get_json(silent=True)
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters" or not isinstance(body.get("parameter", []), list):
        raise InvalidRequest("POST $export takes a FHIR Parameters resource")
    for parameter in body.get("parameter", []):
        values = [v for k, v in parameter.items() if k.startswith("value")] if isinstance(parameter, dict) else []
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if len(values) != 1 or not isinstance(name, str):
            raise InvalidRequest("Each Parameters.parameter needs a name and one value[x]")
        value = values[0]
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            value = value["reference"]
        if isinstance(value, (dict, list)):
            raise InvalidRequest(f"Parameter '{name[:40]}' needs a primitive value or a reference")
        pairs.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    return pairs


def make_bulk_blueprint() -> Blueprint:
    blp = Blueprint("bulk", __name__, url_prefix="/fhir", description="Bulk Data Access 2.0 $export")

    def kickoff(level: str, group_id: str | None = None) -> Response:
        audit_hook.begin(
            "export",
            {"system": "*", "patient": "Patient", "group": "Group"}[level],
            resource_id=group_id,
            query=request.query_string.decode(errors="replace"),
        )
        access = request_access()
        if level == "group" and group_id is not None:
            # 404 for an unknown group. No Group scope is needed (bulk clients ask for the exported
            # types' scopes only): what is exported of its members is narrowed per type.
            facade_state().service.read("Group", group_id, Access.unrestricted())
        query = request.query_string.decode(errors="replace")
        request_url = _base() + request.path.removeprefix("/fhir") + (f"?{query}" if query else "")  # as the client sent it
        job = _bulk().kick_off(
            level,
            kickoff_pairs(request),
            access,
            request_url,
            lenient="handling=lenient" in prefer(request),
            group_id=group_id,
            post=request.method == "POST",
        )
        audit_hook.done(Result({}, detail={"job": job.id, "types": job.request["types"]}))
        outcome = operation_outcome("information", "informational", f"Export {job.id} accepted; poll the Content-Location")
        return fhir_response(outcome, 202, headers={"Content-Location": f"{_base()}/$export-poll/{job.id}"})

    def system_export() -> Response:
        return kickoff("system")

    def patient_export() -> Response:
        return kickoff("patient")

    def group_export(group_id: str) -> Response:
        return kickoff("group", group_id)

    for rule, name, view, what in (
        ("/$export", "export_system", system_export, "every served type"),
        ("/Patient/$export", "export_patient", patient_export, "every patient's compartment"),
        ("/Group/<group_id>/$export", "export_group", group_export, "the Group members' compartments"),
    ):
        documented = blp.doc(summary=f"Bulk Data kick-off: export {what} (Prefer: respond-async)", **openapi_docs.bulk_kickoff())(view)
        blp.add_url_rule(rule, name, documented, methods=["GET", "POST"])

    @blp.route("/$export-poll/<job_id>", methods=["GET"])
    @blp.doc(summary="Bulk Data status: 202 while running, then the manifest", responses=openapi_docs.bulk_status())
    def export_status(job_id: str) -> Response:
        audit_hook.begin("export-status", "*", resource_id=job_id)
        return status_response(_bulk().status(job_id, request_access(), _base()))

    @blp.route("/$export-poll/<job_id>", methods=["DELETE"])
    @blp.doc(summary="Bulk Data cancel: 202, then the status is 404", responses=openapi_docs.bulk_cancel())
    def export_cancel(job_id: str) -> Response:
        audit_hook.begin("export-cancel", "*", resource_id=job_id)
        job = _bulk().cancel(job_id, request_access())
        audit_hook.done(Result({}, detail={"job": job.id, "counts": counts(job)}))
        return fhir_response(operation_outcome("information", "informational", f"Export {job.id} cancelled"), 202)

    @blp.route("/$export-file/<job_id>/<name>", methods=["GET"])
    @blp.doc(summary="Bulk Data output file (NDJSON)", responses=openapi_docs.bulk_file())
    def export_file(job_id: str, name: str) -> Response:
        audit_hook.begin("export-download", "*", resource_id=job_id)
        return file_response(job_id, name, *_bulk().file(job_id, name, request_access()))

    return blp


def status_response(status: Status) -> Response:
    """202 with progress while the job runs; then its manifest (200), or why it failed (500)."""
    job = status.job
    audit_hook.done(Result({}, detail={"job": job.id, "status": job.status, "counts": counts(job)}))
    if not status.done:
        response = Response(status=202)
        response.headers.update({"X-Progress": (job.progress or "queued")[:99], "Retry-After": str(POLL_SECONDS)})
        return response
    if status.manifest is None:  # the job failed
        outcome = operation_outcome("error", "exception", job.error or "The export failed")
        return fhir_response(outcome, 500)
    response = fhir_response(status.manifest, 200, media_type="application/json")
    response.headers["Expires"] = formatdate(job.expires_at or 0, usegmt=True)
    return response


def file_response(job_id: str, name: str, path: Path, entry: dict) -> Response:
    """One output file, streamed (gzip-compressed when the client accepts it), audited."""
    audit_hook.done(Result({}, detail={"job": job_id, "file": name, "type": entry["type"], "count": entry.get("count")}))
    media = "application/fhir+ndjson"
    if accepts_gzip(request.headers.get("Accept-Encoding")):
        response = Response(_gzipped(path), mimetype=media, direct_passthrough=True)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(_chunks(path), mimetype=media, direct_passthrough=True)
        response.headers["Content-Length"] = str(path.stat().st_size)
    add_vary(response, "Accept-Encoding")
    return response


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _gzipped(path: Path) -> Iterator[bytes]:
    """The file gzip-compressed as it is sent: memory holds one chunk, not the file."""
    compressor = zlib.compressobj(3, zlib.DEFLATED, 31)  # 31: the gzip container
    for chunk in _chunks(path):
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()
