"""The app under benchmark: the real receiver plus one bench-only reference route.

`gunicorn 'bench.app:create()'` serves exactly what `receiver.create_app()` builds, with the
settings below, and adds `POST /__bare` (an empty 204 that reads nothing). Both endpoints run
in the same processes with the same gunicorn config, so their ratio measures what the receive
path costs on top of Flask + gunicorn + HTTP on this machine at this moment.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from receiver import create_app

TEN99_SECRET = "whsec_bench_secret"
PLATFORM_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
EMAIL_FROM = "notices@bench.example.com"
DEFAULT_QUEUE = "bench"


def bench_config() -> dict[str, Any]:
    """Settings for the bench app; the Redis URL and queue come from the benchmark runner."""
    return {
        "REDIS_URL": os.environ["BENCH_REDIS_URL"],
        "QUEUE_NAME": os.environ.get("BENCH_QUEUE_NAME", DEFAULT_QUEUE),
        "TEN99POLICY_WEBHOOK_SECRETS": TEN99_SECRET,
        "PLATFORM_WEBHOOK_SECRETS": PLATFORM_SECRET,
        "EMAIL_FROM": EMAIL_FROM,
        # bench/acks.py: the receive path with WAIT 1 after each accept (a replica attached)
        "REDIS_MIN_REPLICA_ACKS": os.environ.get("BENCH_MIN_REPLICA_ACKS", "0"),
    }


def _bare() -> tuple[str, int]:
    return "", 204


def create() -> Flask:
    """The receiver app with `POST /__bare` added (gunicorn app factory)."""
    app = create_app(bench_config())
    app.add_url_rule("/__bare", "bench_bare", _bare, methods=["POST"])
    return app
