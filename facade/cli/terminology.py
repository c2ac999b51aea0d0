"""``fhir-facade terminology …``: crosswalk stewardship from the command line."""

from __future__ import annotations

import click
import orjson

from facade.cli._common import legacy_url
from legacy_adapters.mapping.errors import MappingError


@click.group()
def terminology() -> None:
    """Crosswalks between local legacy codes and standard code systems."""


@terminology.command("coverage")
@click.option("--db", "db_url", required=True, help="Legacy database: a SQLAlchemy URL or a SQLite file.")
@click.option("--mapping", "mapping_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Mapping file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Codes listed per element in the table.")
def coverage_command(db_url: str, mapping_path: str, as_json: bool, top: int) -> None:
    """Per coded element: distinct local codes, rows each covers, mapped or not, percent of rows covered."""
    from legacy_adapters.engines import create_legacy_engine
    from legacy_adapters.mapping.coverage import coverage
    from legacy_adapters.mapping.loader import load_mapping

    try:
        mapping = load_mapping(mapping_path)
        engine = create_legacy_engine(legacy_url(db_url), pool_size=1)
        with engine.connect() as connection:
            report = coverage(mapping, connection)
        engine.dispose()
    except MappingError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps([item.as_dict() for item in report], option=orjson.OPT_INDENT_2).decode())
        return
    if not report:
        click.echo("The mapping has no crosswalk-coded elements.")
    for item in report:
        click.echo(f"{item.resource}.{item.element}  ({item.source}: {item.column} via {item.crosswalk})")
        click.echo(
            f"  {item.percent:.1f}% of {item.rows} coded rows mapped; {len(item.codes)} distinct codes; "
            f"{item.rows_without_code} rows without a code"
        )
        click.echo(f"  {'code':<14}{'rows':>10}  {'status':<10} standard")
        for code in item.codes[:top]:
            click.echo(f"  {code.code:<14}{code.rows:>10}  {code.status:<10} {', '.join(code.standard)}")
        if len(item.codes) > top:
            click.echo(f"  … {len(item.codes) - top} more (--top, or --json for all)")
        click.echo("")
