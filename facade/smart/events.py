"""Token events (issued, refreshed, revoked, introspected, refused) for whoever listens, e.g. the audit trail.

The authorization server calls ``emit(event)`` with a plain dict; subscribers must be quick and must not raise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("facade.smart.events")
_subscribers: list[Callable[[dict], None]] = []


def subscribe(fn: Callable[[dict], None]) -> Callable[[], None]:
    """Register ``fn``; returns a function that unregisters it."""
    _subscribers.append(fn)

    def unsubscribe() -> None:
        if fn in _subscribers:
            _subscribers.remove(fn)

    return unsubscribe


def emit(event: dict) -> None:
    for fn in list(_subscribers):
        try:
            fn(event)
        except Exception:  # noqa: BLE001 - one broken listener must not fail a token request
            log.exception("token event subscriber %s failed", getattr(fn, "__name__", fn))
