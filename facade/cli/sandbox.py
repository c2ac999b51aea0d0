"""``fhir-facade sandbox check``: residual identifiers in the de-identified sandbox's output."""

from __future__ import annotations

import click

from facade.cli._common import config_option, settings_from


@click.group()
def sandbox() -> None:
    """The de-identified sandbox (docs/sandbox.md)."""


@sandbox.command("check")
@config_option
@click.option("--policy", help="Check this policy (a shipped name or a file) instead of the configured one.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many resources of each type (patients with --everything).")
@click.option("--everything", "walk_everything", is_flag=True, help="Walk each patient's $everything instead of each type's search.")
def check_command(config_file: str | None, policy: str | None, limit: int | None, walk_everything: bool) -> None:
    """Compare the sandbox's output with the identified answer for the same rows; report residual
    identifiers per element and exit 1 when there is any."""
    from dataclasses import replace

    from facade.app import build_adapter, build_sandbox
    from facade.core.service import FhirService
    from facade.sandbox.check import check, check_everything
    from facade.sandbox.keys import SandboxKeyError
    from facade.sandbox.policy import PolicyError

    settings = settings_from(config_file)
    if policy:
        settings = replace(settings, sandbox_policy=policy)
    adapter = build_adapter(settings)
    try:
        service = FhirService(adapter, max_count=max(settings.max_count, 500))
        sandboxed = build_sandbox(settings, service)
        walk = check_everything if walk_everything else check
        report = walk(service, sandboxed, limit=limit)
    except (PolicyError, SandboxKeyError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        adapter.engine.dispose()
    findings = report.findings
    for finding in findings:
        click.echo(f"RESIDUAL {finding.kind}: {finding.element} ({finding.count})")
    scope = "all of it" if not limit else f"{limit} patients" if walk_everything else f"at most {limit} per type"
    verdict = f"{len(findings)} kinds of residual identifier" if findings else "no residual identifiers"
    click.echo(f"policy {sandboxed.policy.name}, key {sandboxed.key_id}, {scope}, {report.resources} resources: {verdict}")
    if findings:
        raise SystemExit(1)
