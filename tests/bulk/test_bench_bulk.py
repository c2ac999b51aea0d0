"""The bulk benches run: bulk_export's floor writes the same NDJSON as the engine (so its ratio
means something) and it reports the exporting worker's memory; bulk_during measures the API with
and without exports under way. Never judges speed."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from bench import bulk_during, bulk_export


def test_bulk_export_bench_floor_writes_the_same_ndjson(tmp_path):
    out = tmp_path / "bulk.json"
    assert bulk_export.main(["--size", "200", "--rounds", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["same_ndjson"] is True and report["resources"] > 200
    assert report["facade_resources_per_s"] > 0 and report["floor_resources_per_s"] > 0
    # the exporting process's own memory: a fresh worker's, not the bench's (which holds both exports)
    assert 30 < report["worker_idle_rss_mb"] <= report["worker_peak_rss_mb"] < 1000
    assert report["peak_over_idle"] == round(report["worker_peak_rss_mb"] / report["worker_idle_rss_mb"], 2)


def test_bulk_during_bench_measures_the_api_with_and_without_exports(tmp_path):
    if shutil.which("wrk") is None:
        reason = "wrk is not installed (apt-get install -y wrk): the bench drives load with it"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the bench test must run, not skip)")
        pytest.skip(reason)
    out = tmp_path / "during.json"
    assert bulk_during.main(["--size", "200", "--duration", "1", "--rounds", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["workloads"]) == {"patient_read", "observation_search_lab"}
    for figures in report["workloads"].values():
        assert figures["alone_rps"] > 0 and figures["exporting_rps"] > 0 and figures["ratio"] > 0
