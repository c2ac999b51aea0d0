"""``fhir-facade mapping …``: checking a mapping against a live legacy database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
    from legacy_adapters.mapping.check import CheckReport, Issue, check_mapping
    from legacy_adapters.mapping.loader import load_mapping

    try:
        spec = load_mapping(mapping_path)
        engine = create_legacy_engine(legacy_url(db_url), pool_size=1, autocommit=False)  # it streams whole tables
        with legacy_errors(), engine.connect() as connection:
            report = check_mapping(spec, connection, limit=limit)
        engine.dispose()
    except MappingError as exc:  # the mapping does not load: the same list the server gives
        report = CheckReport(issues=[Issue("error", p.where, p.message, str(p.mark or "")) for p in exc.problems])
    except Exception as exc:  # noqa: BLE001 - e.g. the database is unreachable: say so, no traceback
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    if as_json:
        click.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(report)
    sys.exit(0 if report.ok else 1)


@mapping.command("scaffold")
@click.option("--db", "db_url", required=True, help="Legacy database: a SQLAlchemy URL or a SQLite file.")
@click.option("--schema", "db_schema", default=None, help="The database schema to read (default: the connection's).")
@click.option("--table", "tables", multiple=True, help="Only these tables (repeatable; default: all).")
@click.option("--out", type=click.Path(dir_okay=False), default="-", help="File to write (default: standard output).")
def scaffold_command(db_url: str, db_schema: str | None, tables: tuple[str, ...], out: str) -> None:
    """Draft a mapping from the legacy schema: candidate resources, keys, dates, code tables, indexes to add."""
    from legacy_adapters.engines import create_legacy_engine, legacy_errors
    from legacy_adapters.mapping.scaffold import scaffold

    try:
        engine = create_legacy_engine(legacy_url(db_url), pool_size=1)
        with legacy_errors(), engine.connect() as connection:
            text = scaffold(connection, db_schema, list(tables) or None)
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - e.g. the database is unreachable: say so, no traceback
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    if out == "-":
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text, encoding="utf-8")


@mapping.command("schema")
@click.option("--out", type=click.Path(dir_okay=False), default="-", help="File to write (default: standard output).")
def schema_command(out: str) -> None:
    """The mapping format as a JSON Schema (for editors with a YAML language server)."""
    from legacy_adapters.mapping.format import schema_text

    if out == "-":
        click.echo(schema_text(), nl=False)
    else:
        Path(out).write_text(schema_text(), encoding="utf-8")


@mapping.command("reference")
@click.option("--out", type=click.Path(dir_okay=False), default="-", help="File to write (default: standard output).")
def reference_command(out: str) -> None:
    """The mapping format reference (Markdown), written from the schema."""
    from legacy_adapters.mapping.reference import reference_markdown

    if out == "-":
        click.echo(reference_markdown(), nl=False)
    else:
        Path(out).write_text(reference_markdown(), encoding="utf-8")


def _columns(report: Any) -> list[tuple[list[str], int]]:
    rows = report.reconciliation
    return [([r.resource for r in rows], 12), ([r.source for r in rows], 12), ([r.variant or "-" for r in rows], 8)]


def _print(report: CheckReport) -> None:
    for issue in report.issues:
        place = f"{issue.at}: " if issue.at else ""
        click.echo(f"{issue.severity.upper():8} {place}{issue.where + ': ' if issue.where else ''}{issue.message}")
    widths = [max([len(x) for x in values] + [minimum]) + 2 for values, minimum in _columns(report)]
    if report.reconciliation:
        header = f"{'resource':<{widths[0]}}{'source':<{widths[1]}}{'variant':<{widths[2]}}"
        click.echo(f"\n{header}{'legacy rows':>12}{'filtered':>10}{'resources':>11}{'failed':>8}")
    for item in report.reconciliation:
        failed = sum(item.failure_counts.values())
        names = f"{item.resource:<{widths[0]}}{item.source:<{widths[1]}}{item.variant or '-':<{widths[2]}}"
        click.echo(f"{names}{item.legacy_rows:>12}{item.excluded_by_filters:>10}{item.resources:>11}{failed:>8}")
        for reason, examples in item.failures.items():
            click.echo(f"    {item.failure_counts[reason]} × {reason}  e.g. {', '.join(examples)}")
        for what, examples in item.junk.items():
            click.echo(f"    junk (left out): {item.junk_counts[what]} × {what}  e.g. {', '.join(examples)}")
    click.echo("\nOK" if report.ok else "\nFAILED: see the errors above")
