"""Baseline RQ jobs: notice throughput is compared with draining these in the same worker."""

from __future__ import annotations

from typing import Any


def noop(*args: Any) -> None:
    """Do nothing: what is left is RQ's own per-job cost in the service's worker."""
    return None
