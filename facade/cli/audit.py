"""``fhir-facade audit …``: check the audit trail's hash chain."""

from __future__ import annotations

import click


@click.group()
def audit() -> None:
    """The audit trail in the state database."""


@audit.command("verify")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML configuration file.")
def verify_command(config_file: str | None) -> None:
    """Walk the hash chain; exit 1 and name the records if anything was edited, removed or reordered."""
    from facade.audit.store import AuditStore
    from facade.config import ConfigError, load_settings
    from facade.state import StateStore

    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    state = StateStore(settings.state_database_url)
    try:
        # Spool files of stopped workers are shipped first, so the count covers every record.
        result = AuditStore(state.engine, delivery=settings.audit_delivery, spool_dir=settings.audit_spool_dir).verify()
    finally:
        state.dispose()
    for problem in result.problems:
        click.echo(f"TAMPERED: {problem}", err=True)
    click.echo(f"{result.count} records from {result.writers} writers; head hash {result.head_hash}; {'intact' if result.ok else 'NOT intact'}")
    if not result.ok:
        raise SystemExit(1)
