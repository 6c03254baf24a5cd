"""Slow and silent clients do not starve the web process (issue 12).

The Procfile's own command (`receiver-web`, as shipped) is started on a free
port; 100 connections are held open against it the way an attacker would (64 sending headers
a byte a second, 16 sending a body a byte a second, 20 saying nothing), reopened whenever the
server drops one, while 50 normal signed deliveries are sent. The issue's bar: at least 49 of
them answered within 2 s. A delivery takes milliseconds; 2 s is the sender's patience, not a
speed measurement: under gthread 2x4 (8 threads, each held by one slow connection) 32 of 50
were answered in time in one run here, and the issue saw 0 and 37 of 50 within 10 s.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.store.embedded import free_port
from tests.processes import deliver, start_web, stop

# Seconds are asserted here: nothing else runs beside it (`make test`).
pytestmark = pytest.mark.alone

HEADER_TRICKLERS = 64
BODY_TRICKLERS = 16
SILENT = 20
DELIVERIES = 50
PATIENCE_SECONDS = 2.0


@pytest.fixture
def web(config: dict[str, Any], redis: Any, tmp_path: Path) -> Iterator[int]:
    """The Procfile's web process on a free port; yields the port."""
    port = free_port()
    proc = start_web(config, port, tmp_path / "gunicorn.log")
    try:
        yield port
    finally:
        stop(proc)


class SlowClients:
    """Holds slow and silent connections open on one thread, a byte a second each."""

    HEAD = b"POST /webhooks/1099policy HTTP/1.1\r\nHost: x\r\n"

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: list[tuple[str, socket.socket]] = []
        self.opened = 0
        self.reopened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, kind: str) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if kind == "body":  # whole headers, then a body that never quite arrives
            s.sendall(
                self.HEAD + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            )
        elif kind == "headers":
            s.sendall(self.HEAD + b"X-Slow: ")  # a header line that never ends
        s.setblocking(False)
        self.opened += 1
        return s

    def start(self) -> SlowClients:
        kinds = ["headers"] * HEADER_TRICKLERS + ["body"] * BODY_TRICKLERS + ["silent"] * SILENT
        self.conns = [(kind, self._open(kind)) for kind in kinds]
        self.thread.start()
        return self

    def _closed_by_server(self, s: socket.socket) -> bool:
        readable, _, _ = select.select([s], [], [], 0)
        if not readable:
            return False
        try:
            s.recv(65536)  # an answer (400, 408) or EOF: the server is done with it
        except OSError:
            pass
        return True

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            for i, (kind, s) in enumerate(self.conns):
                try:
                    if self._closed_by_server(s):
                        raise ConnectionResetError
                    if kind != "silent":
                        s.send(b"a")
                except OSError:
                    s.close()
                    self.conns[i] = (kind, self._open(kind))
                    self.reopened += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for _kind, s in self.conns:
            s.close()


def timed_delivery(port: int, invoice: str) -> tuple[int | None, float]:
    """One signed delivery on a new connection: (status, seconds until answered)."""
    started = time.monotonic()
    status = deliver(port, invoice, timeout=PATIENCE_SECONDS)
    return status, time.monotonic() - started


def test_deliveries_are_answered_while_100_slow_connections_are_held(web, redis):
    slow = SlowClients(web).start()
    try:
        time.sleep(2)  # every slow connection in place and trickling
        results = [timed_delivery(web, f"in_slow_{n}") for n in range(DELIVERIES)]
        held = sum(1 for _kind, s in slow.conns if s.fileno() != -1)
    finally:
        slow.close()
    answered = [t for status, t in results if status == 202 and t <= PATIENCE_SECONDS]
    timings = sorted(t for _status, t in results)
    assert held == HEADER_TRICKLERS + BODY_TRICKLERS + SILENT
    assert len(answered) >= DELIVERIES - 1, (
        f"{len(answered)} of {DELIVERIES} answered within {PATIENCE_SECONDS} s; "
        f"slowest {timings[-3:]}"
    )
    # Every answered delivery was stored, once.
    assert len(redis.keys("event:1099policy:*")) == sum(1 for s, _t in results if s == 202)
