"""FHIR JSON responses: plain dicts through orjson, with Accept/_format negotiation.

https://hl7.org/fhir/R4/http.html#mime-type — we produce JSON only; a client that
accepts nothing JSON gets 406.
"""

from __future__ import annotations

from datetime import UTC, datetime

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


def add_vary(response: Response, name: str) -> None:
    """Name a request header the answer varies by. Werkzeug's ``response.vary`` parses the header
    into a set and writes it back on every change: a tenth of the hooks' time on a read."""
    headers = response.headers
    vary = headers.get("Vary")
    if not vary:
        headers["Vary"] = name
    elif name.lower() not in (token.strip().lower() for token in vary.split(",")):
        headers["Vary"] = f"{vary}, {name}"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """RFC 9110's IMF-fixdate of a datetime (naive: UTC), without the email module's general formatter."""
    m = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month - 1]} {m.year:04d} {m.hour:02d}:{m.minute:02d}:{m.second:02d} GMT"


def fhir_response(
    body: dict, status: int = 200, media_type: str = FHIR_JSON, *, pretty: bool = False, headers: dict | None = None
) -> Response:
    payload = orjson.dumps(body, option=orjson.OPT_INDENT_2 if pretty else 0)
    response = Response(payload, status=status, content_type=f"{media_type}; charset=utf-8")
    if headers:
        response.headers.update(headers)
    return response
