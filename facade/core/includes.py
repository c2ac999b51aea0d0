"""Fetching ``_include`` / ``_revinclude`` resources for one page, one search per include.

Every lookup is an ordinary :class:`SearchRequest` run through the service's single
query path, so whatever narrows a search (a token's patient compartment) narrows the
included resources too. Never one query per row:

- ``_include=Observation:patient`` → ``Patient?_id=<every patient id on the page>``;
  the ids come back with the page itself (``Page.references``), read by the same SQL
  expression the ``patient`` parameter filters on.
- ``_revinclude=Observation:patient`` → ``Observation?patient=<every Patient on the page>``,
  capped at :data:`MAX_REVINCLUDES_PER_PAGE` resources per include (a warning says when).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from facade.search.params import Include, ReferenceValue, SearchClause, TokenValue
from facade.search.request import SearchRequest
from legacy_adapters.protocol import Page

# A patient page with _revinclude of its observations could otherwise be millions of rows.
MAX_REVINCLUDES_PER_PAGE = 500

Run = Callable[[SearchRequest], Page]


def id_clause(ids: Iterable[str]) -> SearchClause:
    ids = list(ids)
    return SearchClause("_id", "token", None, tuple(TokenValue(None, i) for i in ids), raw=",".join(ids))


def reference_clause(param: str, target: str, ids: Iterable[str]) -> SearchClause:
    ids = list(ids)
    values = tuple(ReferenceValue(target, i) for i in ids)
    return SearchClause(param, "reference", None, values, raw=",".join(f"{target}/{i}" for i in ids))


def fetch_by_id(run: Run, resource_type: str, ids: Iterable[str]) -> list[dict]:
    """The resources of one type with these ids, in one search."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    return run(SearchRequest(resource_type, clauses=(id_clause(ids),), count=len(ids))).resources


def fetch_includes(run: Run, includes: Iterable[Include], page: Page) -> tuple[list[dict], list[tuple[str, str]]]:
    """The included resources for ``page`` and any warnings (a capped ``_revinclude``)."""
    included: list[dict] = []
    warnings: list[tuple[str, str]] = []
    match_ids = [resource["id"] for resource in page.resources]
    for include in includes:
        if not include.reverse:
            included += fetch_by_id(run, include.target, page.references.get(include.param, ()))
            continue
        if not match_ids:
            continue
        request = SearchRequest(
            include.source,
            clauses=(reference_clause(include.param, include.target, match_ids),),
            count=MAX_REVINCLUDES_PER_PAGE,
        )
        found = run(request)
        included += found.resources
        if found.next_cursor is not None:
            warnings.append(
                (
                    "incomplete",
                    f"_revinclude={include.source}:{include.param} was cut at {MAX_REVINCLUDES_PER_PAGE} resources "
                    "for this page; use a smaller _count or search for them directly",
                )
            )
    return included, warnings
