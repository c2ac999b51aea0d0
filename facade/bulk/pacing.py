"""Exports yield to the interactive API.

An export thread runs in a serving worker, and Python runs one thread of a process at a time: a
page built at full speed holds back every request of that worker meanwhile, and takes a core
from the host's other workers. So while a process is answering requests (one began within the
last second), each export page is followed by a pause long enough that the export has at most
``busy_share`` of the time; with no requests it runs flat out. A host's workers share its load
evenly, so a worker's own requests say whether the host is busy. Exports' status polls and file
downloads do not count: a client polling its own export would keep it slow.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(self, busy_share: float, window: float = 1.0, sleep: Callable[[float], None] = time.sleep):
        if not 0 < busy_share <= 1:
            raise ValueError("busy_share must be above 0 and at most 1")
        self.busy_share = busy_share
        self.window = window
        self.sleep = sleep
        self.last_request = float("-inf")  # time.monotonic() when this process last began a request

    def request_began(self) -> None:
        self.last_request = time.monotonic()

    def busy(self) -> bool:
        return time.monotonic() - self.last_request <= self.window

    def after_page(self, seconds: float) -> None:
        """In the export thread, after a page that took ``seconds`` to read, build and encode."""
        if self.busy_share < 1 and self.busy():
            self.sleep(seconds * (1 - self.busy_share) / self.busy_share)
