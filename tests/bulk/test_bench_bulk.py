"""The bulk_export bench runs, and its floor writes the same NDJSON as the engine (so its ratio
means something). Never judges speed."""

from __future__ import annotations

import json

from bench import bulk_export


def test_bulk_export_bench_floor_writes_the_same_ndjson(tmp_path):
    out = tmp_path / "bulk.json"
    assert bulk_export.main(["--size", "200", "--rounds", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["same_ndjson"] is True and report["resources"] > 200
    assert report["facade_resources_per_s"] > 0 and report["floor_resources_per_s"] > 0
