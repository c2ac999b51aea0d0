"""Developer tasks, one entry each: ``nox -s check``, ``nox -s test``, ``nox -s openapi``.

CI (.ci/run) runs the same commands in the same order: the checks, then the tests.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["check", "docs", "test"]
nox.options.reuse_existing_virtualenvs = True
PACKAGES = ["facade", "legacy_adapters", "terminology", "bench", "tests"]


@nox.session
def check(session: nox.Session) -> None:
    """Lint, formatting and types."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", *PACKAGES)
    session.run("ruff", "format", "--check", *PACKAGES)
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site builds without a broken link (mkdocs serve to read it)."""
    session.install("-e", ".[dev]")
    session.run("mkdocs", "build", "--strict", "--site-dir", session.create_tmp())


@nox.session
def test(session: nox.Session) -> None:
    """The test suite (PostgreSQL and MariaDB tests skip, with the reason, when those servers are down)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def openapi(session: nox.Session) -> None:
    """Regenerate the committed OpenAPI document after changing routes or parameters."""
    session.install("-e", ".")
    session.run("fhir-facade", "openapi", "--out", "openapi/fhir-facade.openapi.json")
