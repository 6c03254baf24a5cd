"""A primary, one replica and three sentinels (`redis-server --sentinel`, the same binary) on
loopback, started by the test; over TLS only with `tls` (tests/tls.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis as redis_lib

from receiver.store.embedded import RedisServer, find_redis_server, free_port
from tests.processes import wait_until
from tests.tls import TLSFiles, TLSRedisServer

MASTER = "receiver"


class Sentinels:
    """Three `redis-server --sentinel` processes watching MASTER on `primary_port`."""

    def __init__(self, directory: Path, primary_port: int, tls: TLSFiles | None = None) -> None:
        self.ports = [free_port() for _ in range(3)]
        self.procs: list[Any] = []
        for n, port in enumerate(self.ports):
            where = directory / f"sentinel-{n}"
            where.mkdir(parents=True)
            conf = where / "sentinel.conf"
            # With TLS the sentinels listen on TLS only and speak it to the servers and to
            # each other (`tls-replication yes`), with the one certificate as client and server.
            listen = (
                f"port {port}\n"
                if tls is None
                else f"port 0\ntls-port {port}\ntls-cert-file {tls.cert}\n"
                f"tls-key-file {tls.key}\ntls-ca-cert-file {tls.ca}\ntls-replication yes\n"
            )
            conf.write_text(
                f"{listen}bind 127.0.0.1\nprotected-mode no\ndir {where}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            self.procs.append(
                subprocess.Popen(
                    [find_redis_server(), str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        self.clients = [
            redis_lib.Redis(port=p, socket_timeout=2) if tls is None else tls.client(p)
            for p in self.ports
        ]

    @property
    def setting(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def primary_port(self) -> int | None:
        """The primary's port as every sentinel names it; None while they disagree."""
        named = set()
        for client in self.clients:
            try:
                host_port = client.sentinel_get_master_addr_by_name(MASTER)
            except redis_lib.RedisError:
                return None
            named.add(int(host_port[1]) if host_port else None)
        return named.pop() if len(named) == 1 else None

    def see_replicas(self, count: int) -> bool:
        try:
            return all(
                len([r for r in c.sentinel_slaves(MASTER) if "s_down" not in r["flags"]]) == count
                for c in self.clients
            )
        except redis_lib.RedisError:
            return False

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)


@contextmanager
def sentinel_cluster(
    directory: Path, tls: TLSFiles | None = None
) -> Iterator[tuple[RedisServer, RedisServer, Sentinels]]:
    """A primary, its replica (linked) and three sentinels that see the replica; all stopped
    on the way out."""

    def server(name: str, *args: str) -> RedisServer:
        if tls is None:
            return RedisServer(directory / name, args=args)
        return TLSRedisServer(directory / name, tls, args=args)

    primary = server("primary").start()
    replica = server("replica", "--replicaof", "127.0.0.1", str(primary.port)).start()
    sentinels = Sentinels(directory, primary.port, tls)
    try:
        on_replica = replica.client()
        assert wait_until(lambda: on_replica.info("replication")["master_link_status"] == "up")
        assert wait_until(lambda: sentinels.see_replicas(1))
        yield primary, replica, sentinels
    finally:
        sentinels.stop()
        replica.stop()
        primary.stop()
