"""The authorization server object: settings, state, keys, clients, users, the token issuer and
its event stream, in one place. No web framework here: its endpoints are facade/web/smart.

One ``Smart`` per app. Nothing here keeps per-request state in memory: codes, tokens and
replay caches are in the state database, so any worker can serve any step of a flow.
"""

from __future__ import annotations

from facade.config import Settings
from facade.smart.clients import ClientRegistry
from facade.smart.events import TokenEvent, TokenEvents
from facade.smart.keys import SigningKey, load_signing_key
from facade.smart.store import SmartStore
from facade.smart.token import TokenIssuer
from facade.smart.users import load_users
from facade.state import StateStore


class Smart:
    def __init__(self, settings: Settings, state: StateStore):
        self.settings = settings
        self.store = SmartStore(state)
        self.clients = ClientRegistry(self.store, settings.clients_file)
        self.users = load_users(settings.users_file, settings.is_demo)
        self.issuer = TokenIssuer(self)
        self.events = TokenEvents()
        self._key: SigningKey | None = None

    def key(self) -> SigningKey:
        """Loaded on first use, so building an app (e.g. for the OpenAPI document) writes no key file."""
        if self._key is None:
            self._key = load_signing_key(self.settings.signing_key_file, generate=self.settings.signing_key_path is None)
        return self._key

    def fhir_base(self) -> str:
        """This server's identity: the issuer and audience of its tokens (one per server,
        never taken from a request's Host header)."""
        return self.settings.public_base_url

    def accepts_audience(self, aud: str) -> bool:
        """Whether an app's ``aud`` names this server (its base URL, or a loopback alias of the demo's)."""
        return aud.rstrip("/") in self.settings.accepted_base_urls

    def emit(self, action: str, client_id: str | None, user: str | None = None, **details: str | None) -> None:
        """A token event for the audit trail; no tokens, no patient data."""
        self.events.emit(TokenEvent(action, client_id, user, **details))
