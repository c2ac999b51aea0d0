"""fhir-facade: a FHIR R4 API in front of a legacy EHR database.

    app.py       the application factory (create_app)
    config.py    settings as data: defaults, TOML file, environment, flags
    errors.py    every error the façade raises, with its HTTP status and FHIR issue code
    gunicorn.py  serving the app with gunicorn
    cli/         the ``fhir-facade`` command
    web/         HTTP: routes, token checking, audit hook, rendering (the only Flask code)
    core/        the framework-free service: read, search, $everything, Bundles, capabilities
    search/      FHIR search parsed into typed requests (no authorization, no SQL)
    access/      the resource server: tokens, scopes, grants narrowing every request
    smart/       the built-in SMART authorization server (its endpoints are web/smart)
    audit/       the hash-chained audit trail
    state/       the façade's own state database

docs/architecture.md walks one request through these rooms.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fhir-facade")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
