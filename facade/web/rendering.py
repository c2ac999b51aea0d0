"""FHIR JSON responses: plain dicts through orjson, with Accept/_format negotiation.

https://hl7.org/fhir/R4/http.html#mime-type — we produce JSON only; a client that
accepts nothing JSON gets 406.
"""

from __future__ import annotations

import orjson
from flask import Request, Response

from facade.errors import NotAcceptable

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = [FHIR_JSON, "application/json", "application/json+fhir"]
_PLAIN_ACCEPT = frozenset({"*/*", FHIR_JSON, "application/fhir+json; charset=utf-8", "application/fhir+json;charset=utf-8"})
_FORMATS = {"json": FHIR_JSON, "application/json": "application/json", FHIR_JSON: FHIR_JSON, "application/json+fhir": FHIR_JSON}


def negotiate(request: Request) -> str:
    """The media type to answer with, or NotAcceptable."""
    environ = request.environ
    accept = environ.get("HTTP_ACCEPT")
    if "_format" not in environ.get("QUERY_STRING", "") and (not accept or accept in _PLAIN_ACCEPT):
        return FHIR_JSON  # the common case, without parsing the query string or Accept
    requested = request.args.get("_format")
    if requested:
        media = _FORMATS.get(requested.split(";")[0].strip())
        if media is None:
            raise NotAcceptable(f"_format={requested} is not supported; this server produces JSON only")
        return media
    if not accept:
        return FHIR_JSON
    best = request.accept_mimetypes.best_match(_JSON_TYPES)
    if best is None:
        raise NotAcceptable("This server produces application/fhir+json only")
    return "application/json" if best == "application/json" and FHIR_JSON not in request.accept_mimetypes.values() else FHIR_JSON


def fhir_response(
    body: dict, status: int = 200, media_type: str = FHIR_JSON, *, pretty: bool = False, headers: dict | None = None
) -> Response:
    payload = orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0)
    response = Response(payload, status=status, content_type=f"{media_type}; charset=utf-8")
    if headers:
        response.headers.update(headers)
    return response
