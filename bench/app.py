"""The app under benchmark: the real receiver plus two bench-only reference routes.

`gunicorn 'bench.app:create()'` serves exactly what `receiver.create_app()` builds, with the
settings below, and adds:
- `POST /__bare`: an empty 204 that reads nothing. Both endpoints run in the same processes
  with the same gunicorn config, so their ratio measures what the receive path costs on top of
  Flask + gunicorn + HTTP on this machine at this moment.
- `POST /__without_index/webhooks/1099policy`: the same receive path in a second app built the
  same way, whose accept script is the real one minus the line that writes the console's
  `events:index` (derived from the real script when the app starts, never written by hand:
  see `without_index`). Its ratio to the real endpoint is what that index costs a delivery.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from receiver import create_app
from receiver.ingest.inbox import Inbox
from receiver.store import keys
from receiver.store.scripts import DirectScript

TEN99_SECRET = "whsec_bench_secret"
PLATFORM_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
EMAIL_FROM = "notices@bench.example.com"
DEFAULT_QUEUE = "bench"
RECEIVE_PATH = "/webhooks/1099policy"
WITHOUT_INDEX = "/__without_index" + RECEIVE_PATH


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


def without_index(source: str) -> str:
    """The accept script's source without its write to the console's index: exactly one line,
    the ZADD into `events:index`, is dropped; anything else about the script is kept. Fails if
    the real script no longer has exactly one such line (the comparison would be meaningless)."""
    index = f'"{keys.EVENTS_INDEX}"'  # as inbox._lua() quotes it
    lines = source.splitlines(keepends=True)
    writes = [i for i, line in enumerate(lines) if index in line and "redis.call(" in line]
    if len(writes) != 1 or "'ZADD'" not in lines[writes[0]]:
        raise RuntimeError(f"expected one ZADD into {keys.EVENTS_INDEX} in the accept script")
    del lines[writes[0]]
    return "".join(lines)


class _InboxWithoutIndex(Inbox):
    """The real inbox whose script is `without_index` of the real one (same connections code,
    same replica settings)."""

    def _accept_script(self) -> Any:
        if self._script is None:
            real = super()._accept_script()
            self._script = DirectScript(
                self.redis,
                without_index(real.source),
                real.numkeys,
                real.replicas,
                self._replicas[1],
            )
        return self._script


def create() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The receiver app with `POST /__bare` added, and the receive path without the console's
    index at WITHOUT_INDEX (gunicorn app factory)."""
    app = create_app(bench_config())
    app.add_url_rule("/__bare", "bench_bare", _bare, methods=["POST"])
    plain: Flask = create_app(bench_config())
    real: Inbox = plain.extensions["inbox"]
    cfg = plain.config["RECEIVER"]
    plain.extensions["inbox"] = _InboxWithoutIndex.from_config(real.redis, real.queue, cfg)

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # One comparison for every request alike (bare, receive, without index).
        if environ["PATH_INFO"] == WITHOUT_INDEX:
            environ["PATH_INFO"] = RECEIVE_PATH
            return plain(environ, start_response)
        return app(environ, start_response)

    return dispatch
