"""Every ``sh`` example of the README and the docs runs against a real demo server, and passes.

Each page's blocks run in order in one shell, as a reader would type them (a variable set in one
block is there in the next), against `fhir-facade serve` on a free port: ``127.0.0.1:8080`` in the
text is that server, and `fhir-facade` commands see the same configuration through the environment.
``curl`` is checked: an HTTP error, or a search that finds nothing, fails the example — an example
that "works" by returning an empty Bundle teaches nothing.

Blocks written as ``shell`` are not run here: they install the project, start a server or run the
suite, and CI runs exactly those. They may hold nothing else (checked below).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.servers import ROOT, Server, facade_command, free_port

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
# What a `shell` block may hold: commands CI itself runs, that start a server, or benchmarks
# (minutes of load; tests/contract/test_bench.py runs their quick form).
NOT_RUN_HERE = re.compile(
    r"^(python3 -m venv|pip install|\. \.venv|fhir-facade serve|pytest|ruff|mypy|mkdocs build|nox|pre-commit|FHIR_FACADE_\w+=|python -m bench\b)"
)
# A wrapper around curl: the body goes to stdout as usual (pipes keep working), then a check.
PRELUDE = r"""
set -euo pipefail
curl() {
    local out err status
    out=$(mktemp); err=$(mktemp)
    # The example's own options come after ours: an example that writes its own -w keeps it (and
    # is then checked by its exit status only).
    command curl -w '%{stderr}\nFHIR_FACADE_STATUS %{http_code}\n' "$@" 2>"$err" | tee "$out"
    status=$(sed -n 's/^FHIR_FACADE_STATUS //p' "$err" | tail -n 1)
    grep -v '^FHIR_FACADE_STATUS \|^$' "$err" >&2 || true
    python3 - "$out" "${status:-0}" "$*" <<'CHECK'
import gzip, json, sys
path, status, args = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
if status >= 400:
    sys.exit(f"\ncurl {args}: HTTP {status}: {data[:300]!r}")
if data[:2] == b"\x1f\x8b":
    data = gzip.decompress(data)
try:
    doc = json.loads(data or b"null")
except ValueError:
    sys.exit(0)
if isinstance(doc, dict) and doc.get("type") == "searchset" and not doc.get("entry") and doc.get("total") is None:
    sys.exit(f"\ncurl {args}: the search found nothing")
CHECK
    rm -f "$out" "$err"
}
"""


def _blocks(page: Path) -> list[tuple[str, str]]:
    return [(kind, code) for kind, code in BLOCK.findall(page.read_text(encoding="utf-8")) if kind in ("sh", "shell")]


@pytest.fixture(scope="module")
def demo_server(demo_path, tmp_path_factory):
    work = tmp_path_factory.mktemp("doc-examples")
    data = work / "data"
    (data / "fhir-facade").mkdir(parents=True)
    shutil.copy(demo_path, data / "fhir-facade" / "demo.sqlite")  # where the docs say the demo lives
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_FACADE_")}
    env.update(XDG_DATA_HOME=str(data), FHIR_FACADE_PORT=str(port), FHIR_FACADE_WORKERS="1")
    server = Server("façade", [*facade_command(), "serve"], env, port, work / "serve.log")
    server.start("/healthz")
    yield env, port
    server.stop()


# The vendor's guide builds its own example database in a directory of its own; its pages run in
# tests/contract/test_docs_mapping.py, not against the demo server.
OWN_HARNESS = {ROOT / "docs" / "mapping" / name for name in ("writing.md", "check-and-scaffold.md", "connections.md", "worked-example.md")}
RUNNABLE = [page for page in PAGES if page not in OWN_HARNESS and any(kind == "sh" for kind, _ in _blocks(page))]


def test_pages_left_to_their_own_harness_are_run_there():
    harness = (ROOT / "tests" / "contract" / "test_docs_mapping.py").read_text(encoding="utf-8")
    for page in OWN_HARNESS:
        assert f'page = DOCS / "{page.name}"' in harness, page.name


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_pages_examples_run(page, demo_server, tmp_path):
    env, port = demo_server
    runnable = [code for kind, code in _blocks(page) if kind == "sh"]
    script = PRELUDE + "\n".join(code.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for code in runnable)
    before = _top_level(ROOT)
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env={**env, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{page.name}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    # Examples run from a checkout (their paths are the repository's); what they write goes to a
    # directory of their own, never into the reader's checkout.
    assert _top_level(ROOT) == before, f"{page.name} wrote into the checkout: {sorted(set(_top_level(ROOT).items()) - set(before.items()))}"


def _top_level(root: Path) -> dict[str, int]:
    return {entry.name: entry.stat().st_mtime_ns for entry in root.iterdir() if entry.is_file()}


def test_blocks_that_are_not_run_only_install_serve_or_test():
    for page in PAGES:
        for kind, code in _blocks(page):
            if kind != "shell":
                continue
            for line in (line.strip() for line in code.splitlines()):
                if line and not line.startswith("#"):
                    commands = [part.strip() for part in re.split(r"&&|\\$", line) if part.strip()]
                    assert all(NOT_RUN_HERE.match(command) for command in commands), f"{page.name}: `{line}` must be an sh example"


def test_the_pages_that_teach_commands_have_examples_that_run():
    assert {page.name for page in RUNNABLE} >= {
        "README.md",
        "getting-started.md",
        "rest.md",
        "smart.md",
        "configuration.md",
        "operations.md",
        "terminology.md",
        "access-and-audit.md",
        "development.md",
    }
