"""The discovery endpoints: SMART configuration, OpenID configuration, JWKS, style.

All public, all JSON whatever the Accept header, all with ``Access-Control-Allow-Origin: *``
so browser apps can read them (SMART App Launch "Considerations for CORS").
"""

from __future__ import annotations

import orjson
from flask import Response

from facade.smart import discovery
from facade.web.state import facade_state


def smart_configuration() -> Response:
    state = facade_state()
    return _json(discovery.smart_configuration(state.authority.fhir_base(), sorted(state.service.types)))


def openid_configuration() -> Response:
    return _json(discovery.openid_configuration(facade_state().authority.fhir_base()))


def jwks() -> Response:
    return _json(facade_state().authority.key().jwks(), cache_seconds=300)


def smart_style() -> Response:
    """The look the launching EHR would like apps to match (``smart_style_url``)."""
    return _json(discovery.STYLE, cache_seconds=3600)


def _json(document: dict, cache_seconds: int = 0) -> Response:
    response = Response(orjson.dumps(document), mimetype="application/json")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = f"public, max-age={cache_seconds}" if cache_seconds else "no-cache"
    return response
