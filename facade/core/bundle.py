"""Searchset Bundles (https://hl7.org/fhir/R4/bundle.html, R4 search §3.1.1.5–6).

Links carry exactly the parameters that were applied, in a stable order; the
``next`` and ``previous`` links add a keyset cursor, so paging needs no server-side
state, and ``first`` is the search without one.
Matches come first, then included resources (``search.mode = include``, each
resource once), then an OperationOutcome entry for anything worth telling.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from facade.core.subsetting import Subsetter
from facade.errors import operation_outcome
from facade.search.cursor import encode_cursor
from facade.search.request import SearchRequest
from legacy_adapters.protocol import Page


def searchset(
    request: SearchRequest,
    page: Page,
    base_url: str,
    *,
    included: Iterable[dict] = (),
    warnings: Iterable[tuple[str, str]] = (),
) -> dict:
    """``warnings``: (OperationOutcome issue code, text) pairs for the outcome entry."""
    params = request.link_params()
    fingerprint = request.fingerprint()
    next_cursor = encode_cursor(fingerprint, page.next_cursor) if page.next_cursor is not None else None
    previous_cursor = encode_cursor(fingerprint, page.previous_cursor, before=True) if page.previous_cursor is not None else None
    if request.ignored:
        ignored = f"Ignored unknown or unsupported search parameters: {', '.join(request.ignored)}"
        warnings = [("not-supported", ignored), *warnings]
    subsetter = Subsetter(request.summary, request.elements, request.resource_type)
    return assemble(
        base_url,
        request.resource_type,
        params,
        request.cursor_token,
        next_cursor,
        page.resources,
        included,
        warnings,
        subsetter,
        total=page.total,
        previous_cursor=previous_cursor,
    )


def assemble(
    base_url: str,
    path: str,
    params: list[tuple[str, str]],
    self_cursor: str | None,
    next_cursor: str | None,
    matches: Iterable[dict],
    included: Iterable[dict],
    warnings: Iterable[tuple[str, str]],
    subsetter: Subsetter | None = None,
    *,
    total: int | None = None,
    previous_cursor: str | None = None,
) -> dict:
    """A searchset Bundle for ``{base_url}/{path}``: links, entries, and one outcome entry."""
    path = f"{base_url}/{path}"
    links = [{"relation": "self", "url": _url(path, params + ([("_cursor", self_cursor)] if self_cursor else []))}]
    if self_cursor:
        links.append({"relation": "first", "url": _url(path, params)})
    if previous_cursor is not None:
        links.append({"relation": "previous", "url": _url(path, params + [("_cursor", previous_cursor)])})
    if next_cursor is not None:
        links.append({"relation": "next", "url": _url(path, params + [("_cursor", next_cursor)])})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    shape = subsetter.apply if subsetter is not None and subsetter.active else (lambda resource: resource)
    entries, seen = [], set()
    for mode, resources in (("match", matches), ("include", included)):
        for resource in resources:
            key = (resource["resourceType"], resource["id"])
            if key in seen:
                continue
            seen.add(key)
            entries.append({"fullUrl": f"{base_url}/{key[0]}/{key[1]}", "resource": shape(resource), "search": {"mode": mode}})
    issues = [operation_outcome("warning", code, text)["issue"][0] for code, text in warnings]
    if issues:
        outcome = operation_outcome("warning", "informational", "")
        outcome["issue"] = issues
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def _url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base
