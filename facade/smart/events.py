"""Token events (issue, refresh, revoke, failure) for the audit trail.

The authorization server calls ``emit`` and knows nothing about audit storage;
the audit module subscribes. Events carry who (client, user), what, outcome and
source address: never a token, a password or patient data.

A subscriber that raises stops the request (fail closed): a token must not be
issued when its audit record cannot be written.
"""

from __future__ import annotations

from collections.abc import Callable

Subscriber = Callable[[dict], None]
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> Subscriber:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    return subscriber


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def emit(event: dict) -> None:
    for subscriber in list(_subscribers):
        subscriber(dict(event))
