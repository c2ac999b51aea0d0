"""Conditional requests (RFC 9110 §13): ``ETag`` and ``Last-Modified`` on FHIR answers, and
``304 Not Modified`` when the client already holds the same one (``If-None-Match``,
``If-Modified-Since``), so a client that polls a resource pays for the bytes once.

The ETag is weak (``W/"…"``, a hash of the JSON): the legacy system keeps no version ids, and
two answers with equal bytes are the same answer. ``Last-Modified`` comes from the resource's
``meta.lastUpdated`` on reads, where the legacy system records when a row changed.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime

from flask import Response, g, request
from werkzeug.http import http_date, parse_date


def remember_last_modified(resource: dict) -> None:
    """A read route names when its resource last changed (for Last-Modified)."""
    updated = (resource.get("meta") or {}).get("lastUpdated")
    if isinstance(updated, str):
        with contextlib.suppress(ValueError):  # not an instant: no Last-Modified
            g.last_modified = datetime.fromisoformat(updated.replace("Z", "+00:00")).astimezone(UTC).replace(microsecond=0)


def conditional(response: Response) -> Response:
    if request.method not in ("GET", "HEAD") or response.status_code != 200 or not request.path.startswith("/fhir/"):
        return response
    if response.direct_passthrough or response.mimetype not in ("application/fhir+json", "application/json"):
        return response
    if request.authorization is not None:
        # Patient data: a browser keeps it for this token only, and asks again before reusing it
        # (so a revoked or expired token is checked, and the access audited, every time).
        response.headers["Cache-Control"] = "private, no-cache"
        response.vary.add("Authorization")
    body = response.get_data()
    etag = 'W/"' + hashlib.blake2s(body, digest_size=12).hexdigest() + '"'
    response.headers["ETag"] = etag
    last_modified = g.get("last_modified")
    if last_modified is not None:
        response.headers["Last-Modified"] = http_date(last_modified)
    if _not_modified(etag, last_modified):
        unchanged = Response(status=304)
        for name in ("ETag", "Last-Modified", "Cache-Control", "Vary", "Content-Location"):
            if name in response.headers:
                unchanged.headers[name] = response.headers[name]
        return unchanged
    return response


def _not_modified(etag: str, last_modified: datetime | None) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:  # when present it decides alone (RFC 9110 §13.2.2)
        tags = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in tags or etag in tags or etag[2:] in tags  # weak comparison
    since = parse_date(request.headers.get("If-Modified-Since"))
    return since is not None and last_modified is not None and last_modified <= since.astimezone(UTC)
