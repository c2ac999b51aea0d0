"""``fhir-facade mapping …``: checking a mapping against a live legacy database."""

from __future__ import annotations

import sys

import click
import orjson

from facade.cli._common import legacy_url
from legacy_adapters.mapping.check import CheckReport
from legacy_adapters.mapping.errors import MappingError


@click.group()
def mapping() -> None:
    """Mapping files: how FHIR resources come from legacy tables."""


@mapping.command("check")
@click.option("--mapping", "mapping_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Mapping file.")
@click.option("--db", "db_url", required=True, help="Legacy database: a SQLAlchemy URL or a SQLite file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Build at most this many rows per source (default: all).")
def check_command(mapping_path: str, db_url: str, as_json: bool, limit: int | None) -> None:
    """Tables and columns exist, types fit, search columns indexed; then legacy rows vs resources built. Exit 1 on errors."""
    from legacy_adapters.engines import create_legacy_engine, legacy_errors
    from legacy_adapters.mapping.check import check_mapping
    from legacy_adapters.mapping.loader import load_mapping

    try:
        spec = load_mapping(mapping_path)
        engine = create_legacy_engine(legacy_url(db_url), pool_size=1)
        with legacy_errors(), engine.connect() as connection:
            report = check_mapping(spec, connection, limit=limit)
        engine.dispose()
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. the database is unreachable: say so, no traceback
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    if as_json:
        click.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(report)
    sys.exit(0 if report.ok else 1)


def _print(report: CheckReport) -> None:
    for issue in report.issues:
        click.echo(f"{issue.severity.upper():8} {issue.where}: {issue.message}")
    if report.reconciliation:
        click.echo(f"\n{'resource':<14}{'source':<14}{'variant':<10}{'legacy rows':>12}{'filtered':>10}{'resources':>11}{'failed':>8}")
    for item in report.reconciliation:
        failed = sum(item.failure_counts.values())
        names = f"{item.resource:<14}{item.source:<14}{item.variant or '-':<10}"
        click.echo(f"{names}{item.legacy_rows:>12}{item.excluded_by_filters:>10}{item.resources:>11}{failed:>8}")
        for reason, examples in item.failures.items():
            click.echo(f"    {item.failure_counts[reason]} × {reason}  e.g. {', '.join(examples)}")
    click.echo("\nOK" if report.ok else "\nFAILED: see the errors above")
