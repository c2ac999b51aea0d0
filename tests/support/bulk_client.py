"""A Bulk Data client's moves against the test app: kick off, poll, download (tests/bulk)."""

from __future__ import annotations

import time

import orjson

from facade.bulk.exports import EARLY_POLL_SECONDS
from support.smart_tokens import bearer

ALL = "system/*.rs"


def token(mint, scope: str = ALL, client_id: str = "exporter", **claims) -> str:
    return mint.token(scope, client_id=client_id, sub=client_id, **claims)


def kick_off(client, path: str, access: str, *, prefer: str = "respond-async", **params):
    headers = {**bearer(access), "Accept": "application/fhir+json", "Prefer": prefer}
    return client.get(f"/fhir/{path}", query_string=params, headers=headers)


def local(url: str) -> str:
    return url.replace("http://testserver", "")


def wait(client, location: str, access: str, timeout: float = 60):
    """Poll as a client does, as often as the server allows: the final response."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(local(location), headers={**bearer(access), "Accept": "application/json"})
        if response.status_code == 429:  # the test polled by hand just before
            assert response.headers["Retry-After"] == "1"
        elif response.status_code != 202:
            return response
        else:
            assert response.headers["Retry-After"] == "1" and len(response.headers["X-Progress"]) < 100
        assert time.monotonic() < deadline, "the export did not finish"
        time.sleep(EARLY_POLL_SECONDS + 0.02)  # the shortest wait the server accepts


def export(client, path: str, access: str, **params) -> dict:
    """Kick off and wait: the manifest."""
    started = kick_off(client, path, access, **params)
    assert started.status_code == 202, started.get_json()
    done = wait(client, started.headers["Content-Location"], access)
    assert done.status_code == 200, done.get_json()
    assert done.mimetype == "application/json" and done.headers["Expires"].endswith("GMT")
    return done.get_json()


def download(client, url: str, access: str) -> list[dict]:
    response = client.get(local(url), headers={**bearer(access), "Accept": "application/fhir+ndjson"})
    assert response.status_code == 200 and response.mimetype == "application/fhir+ndjson"
    return [orjson.loads(line) for line in response.data.splitlines()]


def resources(client, manifest: dict, access: str) -> dict[str, list[dict]]:
    """Every output file's resources, by type."""
    found: dict[str, list[dict]] = {}
    for output in manifest["output"]:
        found.setdefault(output["type"], []).extend(download(client, output["url"], access))
    return found


def searched_ids(client, resource_type: str, access: str, query: str = "") -> list[str]:
    """The ids REST search returns, every page followed."""
    url, ids = f"/fhir/{resource_type}?_count=500&{query}", []
    while url:
        bundle = client.get(url, headers=bearer(access)).get_json()
        assert bundle["resourceType"] == "Bundle", bundle
        ids += [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((local(link["url"]) for link in bundle["link"] if link["relation"] == "next"), None)
    return ids


def run_export(settings, pairs: list[tuple[str, str]]) -> dict[str, list[bytes]]:
    """Run an export with the server's engine in this process (no runner threads): each type's
    NDJSON lines, in file order."""
    from dataclasses import replace

    from facade.access.grant import Access
    from facade.app import create_app

    state = create_app(replace(settings, bulk_threads=0)).extensions["fhir_facade"]
    try:
        state.prepare()
        bulk = state.bulk
        job = bulk.kick_off("system", pairs, Access.unrestricted(), "test", lenient=False)
        assert bulk.runner.run_one(job.id)
        finished = bulk.jobs.get(job.id)
        assert finished is not None and finished.status == "complete", finished and finished.error
        lines: dict[str, list[bytes]] = {}
        for output in finished.outputs:
            lines.setdefault(output["type"], []).extend((bulk.root / job.id / output["name"]).read_bytes().splitlines())
        return lines
    finally:
        state.close()
        state.service.adapter.engine.dispose()
