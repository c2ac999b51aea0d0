"""``fhir-facade clients|users|launch|token``: registering apps, hashing passwords, EHR launch, demo tokens."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
import orjson

from facade.cli._common import config_option, identity_options, settings_from
from facade.config import Settings
from facade.smart import consent
from facade.smart.clients import KINDS, ClientRegistry
from facade.smart.events import TokenEvent
from facade.smart.keys import KeyConfigError, load_signing_key
from facade.smart.launch import create_launch, launch_url
from facade.smart.store import SmartStore, now
from facade.smart.users import hash_password
from facade.state import StateStore


def _registry(settings: Settings) -> ClientRegistry:
    try:
        return ClientRegistry(SmartStore(StateStore(settings.state_database_url)), settings.clients_file)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def clients() -> None:
    """Client applications allowed to ask for tokens."""


@clients.command("add")
@config_option
@click.option("--name", required=True, help="Shown to users on the consent page.")
@click.option("--type", "kind", type=click.Choice(KINDS), required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI (repeatable); apps only.")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False), help="Public keys (JWKS JSON) for private_key_jwt.")
@click.option("--jwks-url", help="Where the client publishes its JWKS (https).")
@click.option("--scope", default="", help="Backend clients: the system/ scopes they may be granted.")
@click.option("--launch-url", help="The app's EHR launch URL (used by `fhir-facade launch`).")
@click.option("--sandbox", is_flag=True, help="Backend clients: for the de-identified sandbox only (docs/sandbox.md).")
@click.option("--purpose", default="", help="Sandbox clients: why they read (in their tokens and every audit record).")
def clients_add(config_file, name, kind, redirect_uris, jwks_file, jwks_url, scope, launch_url, sandbox, purpose):
    """Register a client; prints its client_id (and, once, a confidential client's secret)."""
    jwks = orjson.loads(Path(jwks_file).read_bytes()) if jwks_file else None
    try:
        client, secret = _registry(settings_from(config_file)).add(
            kind,
            name,
            list(redirect_uris),
            jwks=jwks,
            jwks_url=jwks_url,
            scope=scope,
            launch_url=launch_url,
            sandbox=sandbox,
            purpose=purpose,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"client_id: {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}  (shown once; store it in the app's secret store)")


@clients.command("list")
@config_option
def clients_list(config_file):
    """Registered clients (never their secrets)."""
    for client in _registry(settings_from(config_file)).list():
        where = " ".join(client.redirect_uris) or client.scope
        audience = "\tsandbox: " + client.purpose if client.audience == "sandbox" else ""
        click.echo(f"{client.client_id}\t{client.kind}\t{client.name}\t{where}{audience}")


@clients.command("remove")
@config_option
@click.argument("client_id")
def clients_remove(config_file, client_id):
    """Unregister a client (clients from clients_file are removed by editing that file)."""
    if not _registry(settings_from(config_file)).remove(client_id):
        raise click.ClickException(f"no client {client_id} in the state database")
    click.echo(f"removed {client_id}")


@clients.command("revoke")
@config_option
@click.argument("client_id")
@click.option("--user", help="Only this user's grants (e.g. at the patient's request).")
def clients_revoke(config_file, client_id, user):
    """Revoke a client's refresh tokens and their latest access tokens."""
    count = _registry(settings_from(config_file)).store.revoke_client_tokens(client_id, user)
    click.echo(f"revoked {count} grant(s) of {client_id}")


@click.group()
def users() -> None:
    """Users of the sign-in page (users_file)."""


@users.command("hash-password")
@click.password_option()
def users_hash_password(password):
    """Print a password hash for a users_file entry."""
    click.echo(hash_password(password))


@click.command()
@config_option
@click.option("--patient", help="Patient id in context.")
@click.option("--encounter", help="Encounter id in context.")
@click.option("--client", "client_id", help="Print this client's launch URL.")
@identity_options
def launch(config_file, patient, encounter, client_id, base_url, port):
    """Stand in for the EHR: create an EHR launch context and print its `launch` value (last line)."""
    settings = settings_from(config_file, base_url=base_url, port=port)
    registry = _registry(settings)
    try:
        value = create_launch(registry.store, patient, encounter)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if client_id:
        client = registry.get(client_id)
        if client is None or not client.launch_url:
            raise click.ClickException(f"client {client_id} is unknown or has no --launch-url")
        click.echo("open: " + launch_url(client.launch_url, settings.public_base_url, value))
    click.echo(value)


@click.command()
@config_option
@click.option("--scope", "scope", required=True, help='Scopes, e.g. "patient/*.rs" or "user/Observation.rs".')
@click.option("--patient", help="Patient in context (for patient/ scopes).")
@click.option("--sandbox", is_flag=True, help="A token for the de-identified sandbox (system/ scopes), not the identified API.")
@click.option("--purpose", default="demo", show_default=True, help="With --sandbox: the purpose recorded with every access.")
@identity_options
def token(config_file, scope, patient, sandbox, purpose, base_url, port):
    """Mint a short-lived access token for local development (embedded demo only); printed on the last line."""
    settings = settings_from(config_file, base_url=base_url, port=port)
    if not settings.is_demo or settings.signing_key_path or settings.auth_mode != "builtin":
        raise click.ClickException(
            "`fhir-facade token` only works with the embedded demo and its own signing key; "
            "real deployments issue tokens through /fhir/auth/token"
        )
    requested = consent.split_scopes(scope)
    bad = [text for text in requested if not consent.is_valid(text)]
    if bad:
        raise click.ClickException(f"not SMART scopes: {' '.join(bad)}")
    if consent.has_patient_scopes(requested) and not patient:
        raise click.ClickException("patient/ scopes need --patient ID")
    if sandbox and (patient or not all(text.startswith("system/") for text in requested)):
        raise click.ClickException("sandbox tokens carry system/ scopes only, and no patient")
    try:
        key = load_signing_key(settings.signing_key_file, generate=True)
    except KeyConfigError as exc:
        raise click.ClickException(str(exc)) from None
    base = settings.public_base_url
    audience = settings.sandbox_base_url if sandbox else base
    issued = now()
    claims: dict[str, str | int] = {
        "iss": base,
        "aud": audience,
        "sub": "fhir-facade-cli",
        "client_id": "fhir-facade-cli",
        "scope": " ".join(requested),
        "iat": issued,
        "exp": issued + settings.token_lifetime,
        "jti": secrets.token_hex(16),
    }
    if patient:
        claims["patient"] = patient
    if sandbox:
        claims["purpose"] = purpose
    _audit(
        settings,
        TokenEvent("issue", "fhir-facade-cli", None, grant_type="cli", scope=" ".join(requested), jti=str(claims["jti"]), source="cli"),
    )
    click.echo(f"access token for {audience}, valid {settings.token_lifetime} s, scope: {claims['scope']}", err=True)
    click.echo(key.sign(claims))


def _audit(settings: Settings, event: TokenEvent) -> None:
    """A token minted here joins the server's audit trail, as one issued by its token endpoint."""
    from facade.audit.records import token_record
    from facade.audit.store import AuditStore

    state = StateStore(settings.state_database_url)
    store = AuditStore(state.engine, delivery="commit")
    try:
        store.append(token_record(event))
    finally:
        store.close()
        state.dispose()
