"""Request bodies: one way in, whatever the framing.

A body sent with ``Transfer-Encoding: chunked`` has no ``Content-Length``; Werkzeug then reads
it as empty, or (behind a server that de-chunks, like gunicorn) cuts it silently at
``MAX_CONTENT_LENGTH``. :func:`frame_chunked_body` runs before any view and turns it into the
body a ``Content-Length`` would have announced, so every route sees one kind of body: the same
413 past the limit, the same media-type check (415), the same form and JSON parsing.

JSON is parsed by orjson (:func:`json_body`), whose nesting cap turns a hostile document into a
400 instead of a RecursionError.
"""

from __future__ import annotations

import io
from typing import Any

import orjson
from flask import Request, current_app, request
from werkzeug.exceptions import LengthRequired, RequestEntityTooLarge

from facade.errors import InvalidRequest

_READ = 64 * 1024


def frame_chunked_body() -> None:
    """``before_request``: buffer a chunked body (up to the limit) and announce its length."""
    environ = request.environ
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    if not environ.get("wsgi.input_terminated"):
        # The server did not say it de-chunks the stream: reading it could block or misread.
        raise LengthRequired("This server needs Content-Length on request bodies here")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    stream, chunks, size = environ["wsgi.input"], [], 0
    while size <= limit:
        try:
            chunk = stream.read(min(_READ, limit + 1 - size))
        except Exception:  # noqa: BLE001 - the server's own parse errors (a bad chunk size…); their text is the client's data
            raise InvalidRequest("The chunked request body is not valid HTTP/1.1 chunked encoding") from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge()
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    del environ["HTTP_TRANSFER_ENCODING"]
    del environ["wsgi.input_terminated"]
    vars(request._get_current_object()).pop("content_length", None)  # type: ignore[attr-defined]  # Werkzeug caches it


def json_body(req: Request, what: str) -> Any:
    """The body as JSON, or a 400 naming what the route expects."""
    try:
        return orjson.loads(req.get_data())
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"{what}: the request body is not valid JSON") from None
