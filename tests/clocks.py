"""The clock tests hand to the app and the runtime: real time until a test freezes it."""

from __future__ import annotations

import time


class TestClock:
    """One clock per test, shared by the web app and the worker runtime it builds.

    It reads real time (tests that run real workers and RQ's scheduler need it) until a test
    sets `now`; from then on time stands still and moves only when the test moves it.
    """

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self) -> None:
        self.now: float | None = None

    def __call__(self) -> float:
        return time.time() if self.now is None else self.now

    def freeze(self, at: float | None = None) -> TestClock:
        """Stop time at `at` (default: this second)."""
        self.now = float(int(time.time())) if at is None else float(at)
        return self
