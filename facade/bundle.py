"""Searchset Bundles (https://hl7.org/fhir/R4/bundle.html, R4 search §3.1.1.5–6).

Links carry exactly the parameters that were applied, in a stable order; the
``next`` link adds a keyset cursor, so paging needs no server-side state.
"""

from __future__ import annotations

from urllib.parse import urlencode

from facade.errors import operation_outcome
from facade.search.cursor import encode_cursor
from facade.search.request import SearchRequest
from legacy_adapters.protocol import Page


def searchset(request: SearchRequest, page: Page, base_url: str, self_cursor: str | None = None) -> dict:
    base = f"{base_url}/{request.resource_type}"
    params = request.link_params()
    links = [{"relation": "self", "url": _url(base, params + ([("_cursor", self_cursor)] if self_cursor else []))}]
    if page.next_cursor is not None:
        cursor = encode_cursor(request.fingerprint(), page.next_cursor)
        links.append({"relation": "next", "url": _url(base, params + [("_cursor", cursor)])})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    entries = [
        {"fullUrl": f"{base}/{resource['id']}", "resource": resource, "search": {"mode": "match"}}
        for resource in page.resources
    ]
    if request.ignored:
        names = ", ".join(request.ignored)
        outcome = operation_outcome(
            "warning", "not-supported", f"Ignored unknown or unsupported search parameters: {names}"
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def _url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base
