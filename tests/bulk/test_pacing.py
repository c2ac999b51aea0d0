"""Exports give way to the interactive API: while the process answers requests, each page is
followed by a pause that leaves the export its ``busy_share`` of the time; idle, none."""

from __future__ import annotations

import pytest

from facade.bulk.pacing import Pacer
from facade.config import ConfigError, Settings
from support.bulk_client import kick_off, local, token, wait
from support.smart_tokens import bearer
from tests.bulk.conftest import make_app


def test_a_busy_process_pauses_an_export_to_its_share():
    slept: list[float] = []
    pacer = Pacer(0.2, sleep=slept.append)
    pacer.after_page(0.05)
    assert slept == []  # no request yet: flat out
    pacer.request_began()
    pacer.after_page(0.05)
    assert slept == [pytest.approx(0.2)]  # 0.05 s of work in 0.25 s: a fifth
    pacer.last_request -= 2  # the last request was two seconds ago
    pacer.after_page(0.05)
    assert len(slept) == 1
    flat_out = Pacer(1.0, sleep=slept.append)
    flat_out.request_began()
    flat_out.after_page(0.05)
    assert len(slept) == 1


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError):
        Pacer(share)
    with pytest.raises(ConfigError):
        Settings(bulk_busy_share=share).validate()


def test_requests_make_the_servers_exports_give_way(bulk_demo, tmp_path_factory, mint):
    app = make_app(bulk_demo, tmp_path_factory, mint, bulk_threads=0, bulk_page_size=40, bulk_busy_share=0.25)
    client = app.test_client()
    access = token(mint, client_id="paced")
    location = local(kick_off(client, "$export", access, _type="Patient,Condition").headers["Content-Location"])  # a request
    bulk = app.extensions["fhir_facade"].bulk
    assert bulk.pacer.busy()  # the kick-off was a request
    bulk.pacer.last_request -= 5
    assert client.get(location, headers=bearer(access)).status_code == 202
    assert not bulk.pacer.busy()  # a status poll is not: an export would slow itself down
    slept: list[float] = []
    bulk.pacer.sleep = slept.append
    pages: list[float] = []

    def pace(seconds: float) -> None:
        pages.append(seconds)
        bulk.pacer.last_request -= 5  # long ago, unless a request comes now: one does, per page
        assert client.get("/fhir/metadata").status_code == 200
        bulk.pacer.after_page(seconds)

    bulk.engine.pace = pace
    assert bulk.runner.run_one()
    counts: dict[str, int] = {}
    for output in wait(client, location, access).get_json()["output"]:
        counts[output["type"]] = counts.get(output["type"], 0) + output["count"]
    assert len(pages) == sum(-(-count // 40) for count in counts.values()) > 2  # once per page
    assert slept == [pytest.approx(3 * seconds) for seconds in pages]  # busy: a quarter of the time
    app.extensions["fhir_facade"].close()
