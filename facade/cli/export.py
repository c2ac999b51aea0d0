"""``fhir-facade export``: a Bulk Data export run here, by the server's own engine, into a
directory; and ``export list|status|cancel`` for the jobs in the state database.

The local export reads the legacy database as the server would, with the operator's full view
(no token: whoever runs this has the configuration and its database credentials).
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from facade.cli._common import config_option, settings_from

if TYPE_CHECKING:
    from facade.bulk.exports import BulkExports
    from facade.bulk.jobs import JobStore
    from facade.config import Settings
    from facade.state import StateStore


@click.group(invoke_without_command=True)
@config_option
@click.option("--type", "types", help="Resource types, comma-separated (default: every served type).")
@click.option("--since", help="Only resources changed after this instant (e.g. 2024-01-31T00:00:00Z).")
@click.option("--until", help="Only resources changed up to this instant.")
@click.option("--type-filter", "type_filters", multiple=True, help="A Type?search query (repeatable; OR-ed per type).")
@click.option("--group", "group_id", help="Export a Group's members' compartments.")
@click.option("--out", type=click.Path(file_okay=False), help="Directory for the NDJSON files and manifest.json.")
@click.pass_context
def export(
    ctx: click.Context,
    config_file: str | None,
    types: str | None,
    since: str | None,
    until: str | None,
    type_filters: tuple[str, ...],
    group_id: str | None,
    out: str | None,
) -> None:
    """Export to NDJSON files here (with --out), or manage the server's export jobs."""
    ctx.obj = config_file
    if ctx.invoked_subcommand is not None:
        return
    if not out:
        raise click.UsageError("give --out DIR for a local export, or a command: list, status, cancel")
    from facade.access.grant import Access
    from facade.app import create_app
    from facade.bulk.exports import counts, manifest
    from facade.errors import FacadeError

    settings = replace(settings_from(config_file), bulk_threads=0)  # this process runs the job itself
    if settings.is_demo:
        from facade.gunicorn import ensure_demo_database

        ensure_demo_database(settings)
    state = create_app(settings).extensions["fhir_facade"]
    try:
        state.prepare()
        bulk = state.bulk
        pairs = [("_type", types or ""), ("_since", since or ""), ("_until", until or "")] + [("_typeFilter", f) for f in type_filters]
        level = "group" if group_id else "system"
        if group_id and state.service.groups.read("Group", group_id) is None:
            raise click.ClickException(f"Group/{group_id} is not known")
        try:
            job = bulk.kick_off(level, pairs, Access.unrestricted(), "fhir-facade export", lenient=False, group_id=group_id)
        except FacadeError as error:
            raise click.ClickException(error.diagnostics) from None
        _run_with_progress(bulk, job.id, len(job.request["types"]))
        finished = bulk.jobs.get(job.id)
        if finished is None or finished.status != "complete":
            raise click.ClickException(f"the export failed: {finished.error if finished else 'it was cancelled'}")
        target = Path(out)
        target.mkdir(parents=True, exist_ok=True)
        document = manifest(finished, ".", bulk.root)
        for entry in document["output"] + document["error"]:
            name = entry["url"].rsplit("/", 1)[1]
            shutil.move(str(bulk.root / job.id / name), target / name)
            entry["url"] = name
        (target / "manifest.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        bulk.jobs.cancel(job.id)  # the files have moved: the job is done with
        bulk.runner.sweep(force=True)
        total = counts(finished)
        click.echo(f"wrote {sum(total.values())} resources to {target}: " + ", ".join(f"{t}={n}" for t, n in total.items()))
    finally:
        state.close()


def _run_with_progress(bulk: BulkExports, job_id: str, types: int) -> None:
    """Run the job in a thread; show which type it is on and how far."""
    from facade.bulk.jobs import UNFINISHED
    from facade.gunicorn import tune_collector

    tune_collector()  # the collector as a serving worker has it: an export allocates as search pages do
    failure: list[BaseException] = []

    def work() -> None:
        try:
            while (job := bulk.jobs.get(job_id)) is not None and job.status in UNFINISHED:
                # Not claimed: a server sharing this state database took the job first (its runner
                # writes the same files), or it was released for a legacy database that is down.
                if not bulk.runner.run_one(job_id):
                    time.sleep(0.5)
        except BaseException as error:  # noqa: BLE001 - reported below
            failure.append(error)

    runner = threading.Thread(target=work, daemon=True)
    runner.start()
    with click.progressbar(length=types, label="exporting", file=sys.stderr) as bar:
        done = 0
        while runner.is_alive():
            runner.join(0.3)
            job = bulk.jobs.get(job_id)
            if job is not None and job.position:
                reached = min(job.position.get("type", 0), types)
                bar.update(reached - done)
                done = reached
                bar.label = (job.progress or "exporting")[:60]
        bar.update(types - done)
    if failure:
        raise failure[0]


def _open(ctx: click.Context) -> tuple[StateStore, JobStore, Settings]:
    from facade.bulk.jobs import JobStore
    from facade.state import StateStore

    settings = settings_from(ctx.obj)
    state = StateStore(settings.state_database_url)
    state.create_tables()
    return state, JobStore(state.engine, expiry=settings.bulk_expiry), settings


@export.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """Every export job: id, client, status, when, resources written."""
    from facade.bulk.exports import counts

    state, jobs, _ = _open(ctx)
    try:
        for job in jobs.all():
            started = datetime.fromtimestamp(job.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{job.id}  {job.client_id or '-':<20}  {job.status:<9}  {started}  {sum(counts(job).values())} resources")
    finally:
        state.dispose()


@export.command("status")
@click.argument("job_id")
@click.pass_context
def status_command(ctx: click.Context, job_id: str) -> None:
    """One job: status, progress, files and counts, or why it failed."""
    from facade.bulk.exports import counts

    state, jobs, _ = _open(ctx)
    try:
        job = jobs.get(job_id)
        if job is None:
            raise click.ClickException(f"no export {job_id} (it may have expired or been cancelled)")
        click.echo(f"{job.id}: {job.status}" + (f" — {job.progress}" if job.progress else "") + (f" — {job.error}" if job.error else ""))
        for resource_type, count in counts(job).items():
            click.echo(f"  {resource_type}: {count}")
        if job.expires_at:
            click.echo(f"  expires in {max(0, int(job.expires_at - time.time()))} s")
    finally:
        state.dispose()


@export.command("cancel")
@click.argument("job_id")
@click.pass_context
def cancel_command(ctx: click.Context, job_id: str) -> None:
    """Cancel a job; its files are removed."""
    from facade.bulk.files import remove

    state, jobs, settings = _open(ctx)
    try:
        if jobs.get(job_id) is None or not jobs.cancel(job_id):
            raise click.ClickException(f"no export {job_id} to cancel")
        remove(Path(settings.bulk_directory) / job_id)
        click.echo(f"cancelled {job_id}")
    finally:
        state.dispose()
