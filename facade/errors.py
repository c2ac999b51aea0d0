"""Errors the façade raises, each carrying its HTTP status and FHIR issue code.

Every error renders as an OperationOutcome, so the web layer never has to know
which layer failed or why::

    FacadeError (500, exception)
    ├── InvalidRequest (400, invalid)         malformed value, bad _count, bad cursor
    │   ├── UnsupportedParameter (400, not-supported)   unknown param under strict handling
    │   ├── SearchTooBroad (400, too-costly)             more values or clauses than allowed
    │   └── CannotEnforce (400, not-supported)           a scope we could only honour by widening it
    ├── Unauthorized (401, login)            no, expired, revoked or otherwise invalid access token
    ├── Forbidden (403, forbidden)           the token's scopes do not cover the interaction
    ├── NotFound (404, not-found)            unknown type or id
    ├── NotAcceptable (406, not-supported)   Accept/_format we cannot produce
    ├── UnsupportedMediaType (415, not-supported)
    ├── TooManyRequests (429, throttled)     a client past its limit of concurrent exports
    ├── TooCostly (500, too-costly)          the legacy database timed out on the statement
    └── UpstreamUnavailable (503, transient) legacy database unreachable

Each error also carries the response headers it needs (``WWW-Authenticate``, ``Retry-After``).
"""

from __future__ import annotations


class FacadeError(Exception):
    status = 500
    code = "exception"
    severity = "error"

    def __init__(self, diagnostics: str, *, expression: str | None = None):
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression

    @property
    def headers(self) -> dict[str, str]:
        """Response headers this error needs besides its OperationOutcome."""
        return {}

    def to_outcome(self) -> dict:
        return operation_outcome(self.severity, self.code, self.diagnostics, self.expression)


class InvalidRequest(FacadeError):
    status = 400
    code = "invalid"


class UnsupportedParameter(InvalidRequest):
    code = "not-supported"


class SearchTooBroad(InvalidRequest):
    code = "too-costly"


class CannotEnforce(InvalidRequest):
    code = "not-supported"


class Unauthorized(FacadeError):
    """Carries the RFC 6750 challenge for the ``WWW-Authenticate`` header."""

    status = 401
    code = "login"

    def __init__(self, diagnostics: str, *, error: str | None = "invalid_token"):
        super().__init__(diagnostics)
        self.challenge = 'Bearer realm="fhir"' + (f', error="{error}", error_description="{_quoted(diagnostics)}"' if error else "")

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class Forbidden(FacadeError):
    status = 403
    code = "forbidden"

    def __init__(self, diagnostics: str, *, scope: str | None = None):
        super().__init__(diagnostics)
        self.challenge = 'Bearer realm="fhir", error="insufficient_scope"' + (f', scope="{_quoted(scope)}"' if scope else "")

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


def _quoted(text: str) -> str:
    return "".join(ch for ch in text if ch >= " " and ch not in '"\\\x7f')


class NotFound(FacadeError):
    status = 404
    code = "not-found"


class NotAcceptable(FacadeError):
    status = 406
    code = "not-supported"


class UnsupportedMediaType(FacadeError):
    status = 415
    code = "not-supported"


class TooManyRequests(FacadeError):
    status = 429
    code = "throttled"

    def __init__(self, diagnostics: str, *, retry_after: int = 60):
        super().__init__(diagnostics)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooCostly(FacadeError):
    code = "too-costly"


class UpstreamUnavailable(FacadeError):
    status = 503
    code = "transient"
    retry_after = 5  # seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def operation_outcome(severity: str, code: str, diagnostics: str, expression: str | None = None) -> dict:
    issue: dict = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
