"""CORS for the FHIR API, so browser apps (SMART public clients) can call it from their own origin.

Access rides in the ``Authorization`` header, never in cookies, so allowing every origin
grants a page nothing its bearer token does not already grant (SMART App Launch,
"Considerations for CORS"). The authorization server's endpoints set their own headers
(facade/smart), which are left alone here.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Accept, Prefer, If-None-Match, If-Modified-Since, X-Request-ID"
EXPOSED_HEADERS = "Location, Content-Location, WWW-Authenticate, Retry-After, ETag, Last-Modified, X-Request-ID"


def register_cors(app: Flask, prefix: str = "/fhir/") -> None:
    @app.after_request
    def allow_cross_origin(response: Response) -> Response:
        if not request.headers.get("Origin") or not request.path.startswith(prefix):
            return response
        if "Access-Control-Allow-Origin" in response.headers:
            return response
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response
