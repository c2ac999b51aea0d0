"""HTTP helpers shared by the search, paging and validity tests: GET JSON, follow links, walk a search."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

MAX_PAGES = 2000  # runaway guard for walk()


def get_json(client, url: str, status: int = 200, headers: dict | None = None) -> dict:
    """GET ``url``, assert the status code and return the JSON body."""
    response = client.get(url, headers=headers)
    assert response.status_code == status, (url, response.status_code, response.get_data(as_text=True)[:500])
    return response.get_json()


def q(value: str) -> str:
    """``value`` percent-encoded for use as one query-parameter value."""
    return quote(value, safe="")


def link(bundle: dict, relation: str) -> str | None:
    """The URL of the Bundle link with this relation (``self``, ``next``…), or None."""
    return next((item["url"] for item in bundle.get("link", []) if item["relation"] == relation), None)


def walk(client, path: str, on_page: Callable[[dict], object] | None = None, headers: dict | None = None) -> list[dict]:
    """Every page of a search, following ``next`` links; ``on_page`` is called on each page as it arrives."""
    pages: list[dict] = []
    url: str | None = path
    while url:
        bundle = get_json(client, url, headers=headers)
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
        if on_page is not None:
            on_page(bundle)
        pages.append(bundle)
        url = link(bundle, "next")
        assert len(pages) < MAX_PAGES, "runaway paging"
    return pages


def walk_back(client, pages: list[dict]) -> None:
    """From the last of ``pages`` (a walk forward), ``previous`` links give every earlier page
    again, the same ids in the same order; from each of them ``next`` gives the page after it;
    every page but the first links ``first`` to the first, and the first has no ``previous``."""
    first_ids = entry_ids(pages[0])
    assert link(pages[0], "previous") is None and link(pages[0], "first") is None
    bundle = pages[-1]
    for index in range(len(pages) - 2, -1, -1):
        assert entry_ids(get_json(client, link(bundle, "first") or "")) == first_ids
        url = link(bundle, "previous")
        assert url, f"page {index + 2} has no previous link"
        bundle = get_json(client, url)
        assert entry_ids(bundle) == entry_ids(pages[index]), f"previous of page {index + 2}"
        forward = link(bundle, "next")
        assert forward and entry_ids(get_json(client, forward)) == entry_ids(pages[index + 1])
    assert link(bundle, "previous") is None, "nothing precedes the first page"


def entry_ids(bundle: dict) -> list[str]:
    """Ids of the ``match`` entries of one Bundle page."""
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def search_resources(client, path: str) -> list[dict]:
    """All matching resources of a search, in order, over every page."""
    return [e["resource"] for page in walk(client, path) for e in page.get("entry", []) if e["search"]["mode"] == "match"]


def search_ids(client, path: str, on_page: Callable[[dict], object] | None = None) -> list[str]:
    """Ids of all matches of a search, in order, over every page (``on_page`` as for walk)."""
    return [i for page in walk(client, path, on_page) for i in entry_ids(page)]


def sql_ids(raw_db, sql: str, params: tuple = ()) -> list[str]:
    """The first column of every row of a query on the legacy database."""
    return [row[0] for row in raw_db.execute(sql, params)]


def assert_same_ids(api: list[str], expected: list[str], *, allow_empty: bool = False) -> None:
    """The API ids are unique and the same set as ``expected``, which must not be empty unless allowed."""
    assert len(api) == len(set(api)), "the API returned an id more than once"
    missing, extra = set(expected) - set(api), set(api) - set(expected)
    assert not missing and not extra, f"missing {len(missing)} {sorted(missing)[:3]}, extra {len(extra)} {sorted(extra)[:3]}"
    if not allow_empty:
        assert expected, "test data gives no expected match: the test could not fail"
