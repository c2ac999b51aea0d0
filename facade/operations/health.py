"""Readiness: can this worker answer FHIR requests right now, and would it audit them?

Each check answers ok or why not, in words an operator can act on and no data of patients'.
A worker that is not ready still answers ``/healthz`` (alive): restarting it would not help.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Check = Callable[[], None]  # raises when not ready; the message says why


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float


def run_checks(checks: dict[str, Check]) -> list[CheckResult]:
    results = []
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
            ok, detail = True, "ok"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready"; say which kind
            ok, detail = False, str(error) if isinstance(error, NotReady) else type(error).__name__
        results.append(CheckResult(name, ok, detail, round(time.perf_counter() - started, 4)))
    return results


class NotReady(RuntimeError):
    """A readiness check's own finding (its message is shown as is)."""
