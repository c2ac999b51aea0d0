"""``fhir-facade audit …``: check the audit trail's hash chain."""

from __future__ import annotations

import click

from facade.cli._common import config_option, settings_from


@click.group()
def audit() -> None:
    """The audit trail in the state database."""


@audit.command("verify")
@config_option
def verify_command(config_file: str | None) -> None:
    """Walk the hash chain; exit 1 and name the records if anything was edited, removed or reordered."""
    from facade.audit.store import AuditStore
    from facade.state import StateStore

    settings = settings_from(config_file)
    state = StateStore(settings.state_database_url)
    try:
        # Spool files of stopped workers are shipped first, so the count covers every record.
        result = AuditStore(state.engine, delivery=settings.audit_delivery, spool_dir=settings.audit_spool_dir).verify()
    finally:
        state.dispose()
    for problem in result.problems:
        click.echo(f"TAMPERED: {problem}", err=True)
    click.echo(
        f"{result.count} records from {result.writers} writers; head hash {result.head_hash}; {'intact' if result.ok else 'NOT intact'}"
    )
    if not result.ok:
        raise SystemExit(1)
