"""The one clock: every piece of web and worker code asks it for the time.

Production runs on `system_clock` (Unix seconds, float). `create_app(clock=...)` and
`pipeline.runtime.build(cfg, clock=...)` take another one, so a test can freeze time and move
it, instead of sleeping or depending on the hour it runs at. Code below the edges never calls
`time.time()`: it is handed a `Clock` or a `now`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    """Wall-clock Unix seconds."""
    return time.time()
