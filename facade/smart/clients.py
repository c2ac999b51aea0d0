"""Registered client applications: the state database (``fhir-facade clients add``) and ``[auth] clients_file``.

Four kinds, as SMART names them:

* ``public``: a browser or native app without a secret; authorization code + PKCE.
* ``confidential-symmetric``: a server-side app with a secret (HTTP Basic or form post).
* ``confidential-asymmetric``: a server-side app that signs a JWT with its private key
  (``private_key_jwt``, RS384/ES384; public keys registered as a JWKS or a JWKS URL).
* ``backend``: a system without a user (SMART Backend Services): ``client_credentials``
  + ``private_key_jwt``, limited to the scopes registered for it.

Client secrets are stored as SHA-256 hashes (they are 256-bit random values, so a fast hash
is enough; passwords of people get scrypt instead); the secret is shown once, when added.
"""

from __future__ import annotations

import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from authlib.oauth2.rfc6749 import ClientMixin

from facade.smart import consent
from facade.smart.store import SmartStore, digest

KINDS = ("public", "confidential-symmetric", "confidential-asymmetric", "backend")
_AUTH_METHODS = {
    "public": {"none"},
    "confidential-symmetric": {"client_secret_basic", "client_secret_post"},
    "confidential-asymmetric": {"private_key_jwt"},
    "backend": {"private_key_jwt"},
}


def new_client_id() -> str:
    """96 random bits as hex: safe as a URL part and as a command-line argument (a URL-safe
    base64 id can start with '-', which the CLI would read as an option)."""
    return secrets.token_hex(12)


@dataclass(frozen=True)
class Client(ClientMixin):
    client_id: str
    kind: str
    name: str = ""
    redirect_uris: tuple[str, ...] = ()
    secret_hash: str | None = None
    jwks: dict | None = None
    jwks_url: str | None = None
    scope: str = ""  # backend: the pre-authorized scopes; apps: empty (the user decides)
    launch_url: str | None = None
    audience: str = "fhir"  # fhir: the identified API; sandbox: the de-identified one (backend clients only)
    purpose: str = ""  # sandbox clients: why they read, carried in their tokens and audited

    @classmethod
    def from_document(cls, document: dict) -> Client:
        kind = document.get("type", "")
        if kind not in KINDS:
            raise ValueError(f"client {document.get('client_id')!r}: type must be one of {', '.join(KINDS)}")
        return cls(
            client_id=document["client_id"],
            kind=kind,
            name=document.get("name", ""),
            redirect_uris=tuple(document.get("redirect_uris", ())),
            secret_hash=document.get("secret_hash"),
            jwks=document.get("jwks"),
            jwks_url=document.get("jwks_url"),
            scope=document.get("scope", ""),
            launch_url=document.get("launch_url"),
            audience=document.get("audience", "fhir"),
            purpose=document.get("purpose", ""),
        )

    def to_document(self) -> dict:
        document = {
            "client_id": self.client_id,
            "type": self.kind,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "secret_hash": self.secret_hash,
            "jwks": self.jwks,
            "jwks_url": self.jwks_url,
            "scope": self.scope,
            "launch_url": self.launch_url,
            "audience": None if self.audience == "fhir" else self.audience,
            "purpose": self.purpose,
        }
        return {key: value for key, value in document.items() if value not in (None, "", [])}

    # authlib's ClientMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        requested = consent.split_scopes(scope)
        if self.kind == "backend":
            return " ".join(consent.covered(requested, consent.split_scopes(self.scope)))
        return " ".join(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, never a prefix

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(self.secret_hash, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in _AUTH_METHODS[self.kind]

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.kind != "backend"

    def check_grant_type(self, grant_type: str) -> bool:
        if self.kind == "backend":
            return grant_type == "client_credentials"
        return grant_type in ("authorization_code", "refresh_token")


class ClientRegistry:
    """Clients from the state database first, then from the configuration file."""

    def __init__(self, store: SmartStore, clients_file: str | None = None):
        self.store = store
        self.configured = _read_clients_file(clients_file) if clients_file else {}

    def get(self, client_id: str | None) -> Client | None:
        if not client_id or not isinstance(client_id, str):
            return None
        document = self.store.get_client(client_id)
        if document is not None:
            return Client.from_document(document)
        return self.configured.get(client_id)

    def add(
        self,
        kind: str,
        name: str,
        redirect_uris: list[str],
        *,
        jwks: dict | None = None,
        jwks_url: str | None = None,
        scope: str = "",
        launch_url: str | None = None,
        sandbox: bool = False,
        purpose: str = "",
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for confidential-symmetric clients, its secret (shown once).
        ``sandbox``: its tokens are for the de-identified API only (a backend client, with a purpose)."""
        if kind not in KINDS:
            raise ValueError(f"type must be one of {', '.join(KINDS)}")
        if sandbox and (kind != "backend" or not purpose.strip()):
            raise ValueError("sandbox clients are backend clients with a --purpose (recorded with every access)")
        if purpose and not sandbox:
            raise ValueError("--purpose is for sandbox clients")
        if kind != "backend" and not redirect_uris:
            raise ValueError("apps need at least one --redirect-uri")
        if kind in ("confidential-asymmetric", "backend") and not (jwks or jwks_url):
            raise ValueError("private_key_jwt clients need --jwks-file or --jwks-url")
        if kind == "backend" and not scope:
            raise ValueError("backend clients need --scope (the system/ scopes they may be granted)")
        bad = [text for text in consent.split_scopes(scope) if not consent.is_valid(text)]
        if bad:
            raise ValueError(f"not SMART scopes: {' '.join(bad)}")
        secret = secrets.token_urlsafe(32) if kind == "confidential-symmetric" else None
        client = Client(
            client_id=new_client_id(),
            kind=kind,
            name=name,
            redirect_uris=tuple(redirect_uris),
            secret_hash=digest(secret) if secret else None,
            jwks=jwks,
            jwks_url=jwks_url,
            scope=scope,
            launch_url=launch_url,
            audience="sandbox" if sandbox else "fhir",
            purpose=purpose.strip(),
        )
        self.store.put_client(client.client_id, client.to_document())
        return client, secret

    def list(self) -> list[Client]:
        stored = [Client.from_document(document) for document in self.store.list_clients()]
        known = {client.client_id for client in stored}
        return stored + [client for client_id, client in sorted(self.configured.items()) if client_id not in known]

    def remove(self, client_id: str) -> bool:
        return self.store.remove_client(client_id)


def _read_clients_file(path: str) -> dict[str, Client]:
    """``[[clients]]`` tables; a symmetric client's secret is given as ``secret_sha256`` (hex), never in clear."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read clients file {path}: {exc}") from None
    clients = {}
    for entry in document.get("clients", []):
        entry = dict(entry)
        if "secret_sha256" in entry:
            entry["secret_hash"] = entry.pop("secret_sha256")
        client = Client.from_document(entry)
        clients[client.client_id] = client
    return clients
