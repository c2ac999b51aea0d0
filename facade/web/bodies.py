"""Request bodies: one way in, whatever the framing.

A POST body is parsed here for every route that takes one (``_search``, ``$everything``, the
terminology operations): JSON by orjson, whose nesting cap turns a hostile document into a
400 instead of a RecursionError.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Request

from facade.errors import InvalidRequest


def json_body(req: Request, what: str) -> Any:
    """The body as JSON, or a 400 naming what the route expects."""
    try:
        return orjson.loads(req.get_data())
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"{what}: the request body is not valid JSON") from None
