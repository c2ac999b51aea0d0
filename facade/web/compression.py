"""gzip for answers worth compressing, when the client accepts it.

A page of 50 laboratory Observations is about 53 KB of JSON and a tenth of that compressed. Small
answers (a single resource, an error) are sent as they are: compressing them costs more time than
the bytes saved. Level 3 is zlib's fast strategy: on that page it takes about half the time of
level 5 (measured: 370 against 690 µs) for 5.0 KB against 4.4 KB.
"""

from __future__ import annotations

import gzip

from flask import Response, request

from facade.web.rendering import add_vary

MIN_BYTES = 1400  # about one TCP segment: below this nothing is saved
LEVEL = 3
_COMPRESSIBLE = ("application/fhir+json", "application/json", "application/fhir+ndjson", "application/ndjson")


def accepts_gzip(header: str | None) -> bool:
    """``Accept-Encoding`` allows gzip: named with a non-zero q, or else covered by ``*`` (RFC 9110 §12.5.3)."""
    weights: dict[str, float] = {}
    for item in (header or "").lower().split(","):
        name, _, params = item.strip().partition(";")
        q = params.strip()
        weights[name.strip()] = _q(q[2:]) if q.startswith("q=") else 1.0
    if "gzip" in weights:
        return weights["gzip"] > 0
    return weights.get("*", 0) > 0


def _q(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def compress(response: Response) -> Response:
    add_vary(response, "Accept-Encoding")
    accept = request.environ.get("HTTP_ACCEPT_ENCODING")
    if (
        not accept  # most API clients: decided without looking at the response
        or response.direct_passthrough
        or response.status_code < 200
        or response.status_code in (204, 304)
        or "Content-Encoding" in response.headers
        or response.mimetype not in _COMPRESSIBLE
        or not accepts_gzip(accept)
    ):
        return response
    body = response.get_data()
    if len(body) < MIN_BYTES:
        return response
    response.set_data(gzip.compress(body, compresslevel=LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    return response
