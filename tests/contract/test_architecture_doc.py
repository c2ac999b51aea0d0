"""docs/architecture.md walks one request through the code: every file and function it names
must exist, so the walk cannot drift from the code unnoticed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
# `facade/web/routes.py`, `web/auth.py:request_access()`, `core/service.py:FhirService.search`
REFERENCE = re.compile(r"`((?:facade|legacy_adapters|terminology|[a-z_]+)/[\w/]+\.py)(?::([\w.]+))?")


def _resolve(path: str) -> Path | None:
    for base in ("", "facade/", "legacy_adapters/", "legacy_adapters/mapping/"):
        candidate = ROOT / (base + path)
        if candidate.exists():
            return candidate
    return None


def test_every_file_and_name_the_walk_mentions_exists():
    text = DOC.read_text(encoding="utf-8")
    references = REFERENCE.findall(text)
    assert len(references) > 20
    missing = []
    for path, name in references:
        file = _resolve(path)
        if file is None:
            missing.append(path)
            continue
        for part in filter(None, (name or "").split(".")):
            if not re.search(
                rf"^\s*(?:def|class)\s+{re.escape(part)}\b|^\s*{re.escape(part)}\s*[:=]", file.read_text(encoding="utf-8"), re.M
            ):
                missing.append(f"{path}:{name}")
                break
    assert missing == []
