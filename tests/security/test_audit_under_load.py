"""Every answered request has exactly one audit record, under load, with workers killed (SIGKILL)
in the middle, for both deliveries and both kinds of state database, with pages of 1,000 ids
(records of about 45 KB, long enough to be seen half-written by a shipper).

Each request carries a unique ``_id:not=<tag>`` (it matches every row, and the audited query
keeps it), so the trail can be matched against the answers the client actually received.
``python -m bench.audit check`` runs the same check for longer."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.audit import run_check


@pytest.mark.parametrize("delivery", ["spool", "commit"])
@pytest.mark.parametrize("state", ["sqlite", "postgresql"])
def test_every_answered_request_has_exactly_one_record_with_workers_killed(demo_path, tmp_path, delivery, state, request):
    if state == "postgresql":
        request.getfixturevalue("postgres_url")  # skips (or fails in CI) without the service
    report = run_check(
        db=Path(demo_path), work_dir=tmp_path, delivery=delivery, state=state, duration=6, kills=2, count=1000, min_answered=8
    )
    assert report["kills"] == 2 and report["answered"] >= 8, report  # (a loaded machine answers fewer pages of 1,000)
    assert report["ids_per_record"] == 1000, report
    assert report["answered_not_audited"] == [] and report["audited_twice"] == [], report
    assert report["verify"] == "intact" and report["ok"], report
    assert report["writers"] >= 2, report  # each worker numbers its own records (a killed one's are shipped by another)
