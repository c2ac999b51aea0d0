"""Token events (issue, refresh, revoke, failure) for the audit trail.

The authorization server calls ``emit`` and knows nothing about audit storage;
the audit module subscribes. Events carry who (client, user), what, outcome and
source address: never a token, a password or patient data.

A subscriber that raises stops the request (fail closed): a token must not be
issued when its audit record cannot be written.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, has_app_context

Subscriber = Callable[[dict], None]
APP_SUBSCRIBERS = "fhir_facade_token_event_subscribers"
_subscribers: list[Subscriber] = []  # process-wide listeners (tests, tools)


def subscribe(subscriber: Subscriber, app: Flask | None = None) -> Callable[[], None]:
    """Register ``subscriber`` for events of ``app`` (an app's audit trail hears only its own
    tokens) or, without ``app``, of every app; returns a function that unregisters it."""
    listeners = app.extensions.setdefault(APP_SUBSCRIBERS, []) if app is not None else _subscribers
    if subscriber not in listeners:
        listeners.append(subscriber)
    return lambda: listeners.remove(subscriber) if subscriber in listeners else None


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def emit(event: dict) -> None:
    app_listeners = current_app.extensions.get(APP_SUBSCRIBERS, []) if has_app_context() else []
    for subscriber in [*_subscribers, *app_listeners]:
        subscriber(dict(event))
