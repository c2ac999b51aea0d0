"""Token events (issue, refresh, revoke, failure) for the audit trail.

The authorization server emits them and knows nothing about audit storage; the
audit trail subscribes (facade/web/audit_hook.py). Events carry who (client, user),
what and the outcome: never a token, a password or patient data.

A subscriber that raises stops the request (fail closed): a token must not be
issued when its audit record cannot be written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

ACTIONS = ("issue", "refresh", "revoke", "failure")


@dataclass(frozen=True)
class TokenEvent:
    action: str  # issue | refresh | revoke | failure
    client_id: str | None
    user: str | None = None  # the signed-in user's name, when there is one
    grant_type: str | None = None
    scope: str | None = None
    jti: str | None = None  # the access token's id (never the token itself)
    token_type: str | None = None  # revoke: access_token | refresh_token
    step: str | None = None  # failure: authorize | login | consent | token
    error: str | None = None  # failure: the OAuth error code
    source: str | None = None  # where the request came from (set by the HTTP layer)

    @property
    def failed(self) -> bool:
        return self.action == "failure"


Subscriber = Callable[[TokenEvent], None]


class TokenEvents:
    """One authorization server's event stream."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Register ``subscriber``; returns a function that unregisters it."""
        with self._lock:
            if subscriber not in self._subscribers:
                self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def emit(self, event: TokenEvent) -> None:
        for subscriber in list(self._subscribers):
            subscriber(event)
