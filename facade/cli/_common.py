"""What every command shares: ``--config`` and the server-identity options, settings loaded
exactly as ``serve`` loads them (defaults, file, environment, flags), and legacy database URLs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from facade.config import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML configuration file (default: $FHIR_FACADE_CONFIG)."
)


def identity_options(command: F) -> F:
    """``--base-url`` and ``--port``: the server a token or launch is for, as ``serve`` is told."""
    command = click.option("--port", type=int, help="The port the server listens on (as given to serve).")(command)
    return click.option("--base-url", help="The server's public URL of /fhir (as configured for serve).")(command)


def settings_from(config_file: str | None, **overrides: Any) -> Settings:
    """The settings, or a one-line error (no traceback)."""
    try:
        return load_settings(config_file, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def legacy_url(db: str) -> str:
    """``--db``: a SQLAlchemy URL, or the path of a SQLite file (opened read-only)."""
    from legacy_adapters.engines import sqlite_url

    return db if "://" in db else sqlite_url(db)
