"""Every failure leaves as an OperationOutcome with the right status; never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from facade.errors import FacadeError, NotAcceptable, operation_outcome
from facade.web.rendering import FHIR_JSON, fhir_response, negotiate

log = logging.getLogger("facade.web")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 406: "not-supported", 413: "too-costly", 415: "not-supported"}


def _media_type() -> str:
    try:
        return negotiate(request)
    except NotAcceptable:
        return FHIR_JSON  # the error itself still has to be said in some format


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(FacadeError)
    def facade_error(error: FacadeError) -> Response:
        return fhir_response(error.to_outcome(), error.status, _media_type(), headers=error.headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        text = error.description if status != 404 else f"No FHIR endpoint at {request.path}"
        code = _HTTP_CODES.get(status, "invalid" if status < 500 else "exception")
        allowed = getattr(error, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        return fhir_response(operation_outcome("error", code, text or ""), status, _media_type(), headers=headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # The log line names the failure, not the request's data (which may be PHI).
        log.exception("unhandled %s on %s %s", type(error).__name__, request.method, request.url_rule)
        outcome = operation_outcome("fatal", "exception", "Internal server error")
        return fhir_response(outcome, 500, _media_type())
