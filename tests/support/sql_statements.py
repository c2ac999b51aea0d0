"""Counting the SQL statements a request sends: "one statement per page plus batched lookups"."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

import sqlalchemy as sa


@contextlib.contextmanager
def count_statements(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def selects(statements: list[str]) -> list[str]:
    """The SELECTs among what was sent (not the session's own statements)."""
    return [statement for statement in statements if statement.lstrip().upper().startswith("SELECT")]


def page_through(adapter, request) -> int:
    """Every page of an adapter search, each from the previous page's cursor: how many there were."""
    pages = 0
    while True:
        page = adapter.search(request)
        pages += 1
        if page.next_cursor is None:
            return pages
        request = replace(request, cursor=page.next_cursor)
