"""Everything one app holds, in one ``app.extensions["fhir_facade"]`` slot (Flask's extension
pattern): settings, the service, the state database, the audit trail, token checking, and the
authorization server when it is built in."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app

from facade.audit.store import AuditStore
from facade.config import Settings
from facade.core.service import FhirService
from facade.core.terminology import TerminologyService
from facade.errors import UpstreamUnavailable
from facade.sandbox.service import SandboxService
from facade.smart.server import Smart
from facade.state import StateStore
from legacy_adapters.protocol import LegacyAdapter

if TYPE_CHECKING:
    from facade.bulk.exports import BulkExports
    from facade.sandbox.export import SandboxExports
    from facade.web.auth import Authenticator
    from facade.web.smart.oauth import OAuthServer

EXTENSION = "fhir_facade"


@dataclass
class FacadeState:
    settings: Settings
    service: FhirService
    state_store: StateStore
    audit: AuditStore
    auth: Authenticator
    terminology: TerminologyService | None = None
    smart: Smart | None = None  # the built-in authorization server (auth_mode "builtin")
    oauth: OAuthServer | None = None  # its authlib binding
    bulk: BulkExports | None = None  # $export (facade/bulk)
    sandbox: SandboxService | None = None  # the de-identified API (settings.sandbox_enabled)
    sandbox_auth: Authenticator | None = None  # its token checking: its own audience
    sandbox_exports: SandboxExports | None = None  # its $export (facade/sandbox/export.py)
    _closers: list[Callable[[], None]] = field(default_factory=list)
    _prepared: bool = False
    _prepare_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def adapter(self) -> LegacyAdapter:
        return self.service.adapter

    @property
    def authority(self) -> Smart:
        """The built-in authorization server (its endpoints exist only when it does)."""
        if self.smart is None:
            raise RuntimeError("the built-in authorization server is not configured (auth_mode is not builtin)")
        return self.smart

    @property
    def oauth_server(self) -> OAuthServer:
        if self.oauth is None:
            raise RuntimeError("the built-in authorization server is not configured (auth_mode is not builtin)")
        return self.oauth

    def prepare(self) -> None:
        """Create the state tables and the audit head once per process (a no-op afterwards);
        while the state database cannot be reached, requests get 503 and the next one tries again."""
        if self._prepared:
            return
        with self._prepare_lock:
            if self._prepared:
                return
            try:
                self.state_store.create_tables()
                self.audit.create()
            except sa.exc.SQLAlchemyError as error:
                raise UpstreamUnavailable("The server's state database is unavailable; try again shortly") from error
            self._prepared = True

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        """Stop auditing token events, ship or commit pending audit records, release connections."""
        while self._closers:
            self._closers.pop()()


def facade_state() -> FacadeState:
    return current_app.extensions[EXTENSION]
