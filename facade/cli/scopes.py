"""``fhir-facade scopes …``: what scopes grant, for security reviewers."""

from __future__ import annotations

import click
import orjson

from facade.cli._common import config_option, settings_from


@click.group()
def scopes() -> None:
    """SMART scopes as this server enforces them."""


@scopes.command("explain")
@click.argument("scope_text")
@click.option("--patient", help="The token's patient context (patient/ scopes are confined to it).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
def explain_command(scope_text: str, patient: str | None, as_json: bool, config_file: str | None) -> None:
    """Per resource type: interactions allowed, the filters and SQL applied, the compartment."""
    from facade.app import build_adapter
    from facade.cli.explain import explain, render_text
    from facade.gunicorn import ensure_demo_database

    settings = settings_from(config_file)
    if settings.is_demo:
        ensure_demo_database(settings)
    report = explain(scope_text, build_adapter(settings), patient)
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if as_json else render_text(report))
