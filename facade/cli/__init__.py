"""The ``fhir-facade`` command: ``serve``, ``demo``, ``openapi`` here; the other groups live in
this package, one module each (mapping, terminology, scopes, audit, export, smart)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import orjson

from facade.cli._common import config_option, settings_from
from facade.config import ConfigError, Settings, load_settings
from facade.sandbox.policy import PolicyError
from legacy_adapters.mapping.errors import MappingError


@click.group()
def main() -> None:
    """A FHIR R4 API in front of a legacy EHR database."""
    from facade.operations.logs import configure

    configure(os.environ.get("FHIR_FACADE_LOG_FORMAT", "text"))


@main.command()
@config_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--workers", type=int, help="Worker processes (default: the number of CPU cores).")
@click.option("--base-url", help="The public URL of /fhir, when clients reach the server through another address (a proxy).")
def serve(config_file: str | None, host: str | None, port: int | None, workers: int | None, base_url: str | None) -> None:
    """Serve FHIR under /fhir. With no configuration: the embedded demo."""
    from facade.gunicorn import PortInUse
    from facade.gunicorn import serve as run
    from facade.operations.logs import configure

    settings = settings_from(config_file, host=host, port=port, workers=workers, base_url=base_url)
    configure(settings.log_format)
    try:
        run(settings)
    except PortInUse as error:
        raise click.ClickException(str(error)) from None
    except MappingError as exc:  # the same checks and messages as `fhir-facade mapping check`
        raise click.ClickException(f"the mapping cannot be served:\n{exc}") from None
    except PolicyError as exc:
        raise click.ClickException(f"the sandbox policy cannot be served:\n{exc}") from None


@main.group()
def demo() -> None:
    """The embedded demo legacy database."""


@demo.command("init")
@click.option("--patients", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="SQLite file, or a SQLAlchemy URL.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same data).")
def demo_init(patients: int, out: str, seed: int | None) -> None:
    """Generate the synthetic legacy hospital database."""
    from legacy_adapters.sources.demo.generate import DEMO_SEED, generate

    if "://" not in out:
        Path(out).resolve().parent.mkdir(parents=True, exist_ok=True)
    counts = generate(out, patients=patients, seed=DEMO_SEED if seed is None else seed)
    click.echo(f"wrote {out}: " + ", ".join(f"{table}={count}" for table, count in counts.items()))


@demo.command("patient")
@config_option
def demo_patient(config_file: str | None) -> None:
    """Print the id of a demo patient with data of every kind (visits, labs, vitals, problems, medications…)."""
    from facade.gunicorn import ensure_demo_database
    from legacy_adapters.engines import create_legacy_engine, sqlite_url
    from legacy_adapters.sources.demo.showcase import showcase_patient

    settings = settings_from(config_file)
    if not settings.is_demo:
        raise click.ClickException("`fhir-facade demo patient` is for the embedded demo database")
    ensure_demo_database(settings)
    engine = create_legacy_engine(sqlite_url(settings.demo_path))
    try:
        patient = showcase_patient(engine)
    finally:
        engine.dispose()
    if patient is None:
        raise click.ClickException("no demo patient has data of every kind (is the demo very small?)")
    click.echo(patient)


@main.command()
@click.option("--out", type=click.Path(dir_okay=False), default="-", help="File to write (default: standard output).")
def openapi(out: str) -> None:
    """Print the OpenAPI document of the configured server."""
    try:
        document = openapi_document(load_settings())
    except (ConfigError, MappingError) as exc:
        raise click.ClickException(str(exc)) from None
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")


def openapi_document(settings: Settings) -> dict:
    from facade.app import create_app

    # Building the app reads the mapping only; the legacy database is not touched.
    return create_app(settings).test_client().get("/fhir/openapi.json").get_json()


# The other command groups, one module each.
from facade.cli import smart as smart_cli  # noqa: E402
from facade.cli.audit import audit  # noqa: E402
from facade.cli.export import export  # noqa: E402
from facade.cli.mapping import mapping  # noqa: E402
from facade.cli.sandbox import sandbox  # noqa: E402
from facade.cli.scopes import scopes  # noqa: E402
from facade.cli.terminology import terminology  # noqa: E402

for group in (mapping, terminology, scopes, audit, export, sandbox, smart_cli.clients, smart_cli.users, smart_cli.launch, smart_cli.token):
    main.add_command(group)

if __name__ == "__main__":
    main()
