"""Presenting results: readable tables on stdout, and the JSON document."""

from __future__ import annotations

import json
from pathlib import Path


def _ms(figures: dict) -> str:
    return f"{figures['p50_ms']:.2f} / {figures['p99_ms']:.2f}"


def _ratio(ratio: dict | None) -> str:
    if not ratio:
        return "n/a"

    def fmt(x: float) -> str:
        return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"

    return f"{fmt(ratio['mean'])} ({fmt(ratio['min'])}–{fmt(ratio['max'])})"


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def _cpu(result: dict) -> str:
    facade, floor = result["facade"].get("cpu_us"), result["floor"].get("cpu_us")
    return f"{facade} / {floor}" if facade and floor else "?"


def results_table(document: dict) -> str:
    meta = document["meta"]
    subject = meta.get("subject", "façade")
    lines = []
    wide = max(10, len(subject) + 2)  # the subject's requests/s column
    header = (
        f"{'workload':<38} {subject + '/s':>{wide}} {'floor/s':>10}  {'ratio f/F (min–max)':<20}"
        f" {subject + ' p50/p99 ms':>19} {'floor p50/p99 ms':>18} {'p99 f/F':>8} {'CPU µs f/F':>13} {'bytes ' + subject + '/floor':>19}"
    )
    for run in document["sizes"]:
        lines.append("")
        lines.append(
            f"== {run.get('engine', 'sqlite')}, {run['size']} patients — {meta['workers']} workers × {meta['threads']} threads each, "
            f"wrk {meta['connections']} connections, {meta['rounds']} round(s) × {meta['duration']} s =="
        )
        lines.append(header)
        for r in run["results"]:
            size_note = "" if r["parity"]["bytes_within_20pct"] else "  (!) sizes differ >20%"
            unit = " pages" if r["unit"] == "pages/s" else ""
            lines.append(
                f"{r['title'] + unit:<38} {r['facade']['rps']:>{wide}.1f} {r['floor']['rps']:>10.1f}  {_ratio(r['ratio']):<20}"
                f" {_ms(r['facade']):>19} {_ms(r['floor']):>18} {_times(r.get('p99_ratio')):>8}"
                f" {_cpu(r):>13} {r['bytes']['facade']:>9} / {r['bytes']['floor']:<8}{size_note}"
            )
        rss = run["rss_mb"]
        lines.append(
            f"peak RSS per worker (VmHWM, MiB): {subject} {', '.join(map(str, rss['facade'])) or '?'}"
            f"; floor {', '.join(map(str, rss['floor'])) or '?'}"
        )
    lines.append(
        f"ratio = {subject} requests/s ÷ floor requests/s, paired per round (1.00 = as fast as the floor);"
        f" p99 f/F = {subject} p99 ÷ floor p99, both under the same saturating load;"
        " CPU µs f/F = the workers' CPU per request (user + system, gunicorn included), best round"
    )
    return "\n".join(lines)


def scaling(document: dict) -> list[dict]:
    """p50 latency of each workload at each size, and big/small."""
    runs = sorted(document["sizes"], key=lambda run: run["size"])
    if len(runs) < 2:
        return []
    small, big = runs[0], runs[-1]
    rows = []
    for r in small["results"]:
        other = next((b for b in big["results"] if b["workload"] == r["workload"]), None)
        if other is None:
            continue
        row = {"workload": r["workload"], "title": r["title"], "small": small["size"], "big": big["size"]}
        for side in ("facade", "floor"):
            p50s = {run["size"]: next(x[side]["p50_ms"] for x in run["results"] if x["workload"] == r["workload"]) for run in runs}
            row[f"{side}_p50_ms"] = p50s
            row[f"{side}_big_over_small"] = round(other[side]["p50_ms"] / r[side]["p50_ms"], 2) if r[side]["p50_ms"] else None
        rows.append(row)
    return rows


def scaling_table(rows: list[dict], subject: str = "façade") -> str:
    if not rows:
        return ""
    sizes = list(rows[0]["facade_p50_ms"])
    cells = "".join(f" {subject + ' ' + str(s):>14}" for s in sizes) + "".join(f" {'floor ' + str(s):>14}" for s in sizes)
    lines = [
        "",
        "== scaling: p50 latency (ms) by size ==",
        f"{'workload':<38}{cells} {subject + ' big/small':>17} {'floor big/small':>16}",
    ]
    for row in rows:
        values = "".join(f" {row['facade_p50_ms'][s]:>14.2f}" for s in sizes) + "".join(f" {row['floor_p50_ms'][s]:>14.2f}" for s in sizes)
        lines.append(f"{row['title']:<38}{values} {row['facade_big_over_small']:>17} {row['floor_big_over_small']:>16}")
    return "\n".join(lines)


def write_json(document: dict, path: Path) -> None:
    """Flat per-workload records (the stable interface) plus the per-size details."""
    out = {
        "meta": document["meta"],
        "results": [r for run in document["sizes"] for r in run["results"]],
        "scaling": scaling(document),
        "rss_mb": {str(run["size"]): run["rss_mb"] for run in document["sizes"]},
        "audit": {str(run["size"]): run["audit"] for run in document["sizes"]},
        "databases": {str(run["size"]): run["database"] for run in document["sizes"]},
    }
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
