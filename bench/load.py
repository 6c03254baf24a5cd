"""Load generation: pre-signed deliveries, wrk (closed loop) and a paced open-loop sender.

- Every delivery is a distinct event (its own id), signed the way 1099Policy signs
  (`Ten99Policy-Signature: t=<unix>,v1=<hex>` over `<t>.<body>`), so the receive path really
  stores, de-duplicates and enqueues each one; repeated ids would take the cheaper duplicate
  branch and flatter the result.
- wrk reads them from a file; each wrk thread walks its own slice of a given range, and reports
  (as one JSON line from `done()`) how often a thread ran out of its slice and wrapped around.
- wrk cannot pace, and Debian has no wrk2, so the fixed-rate run uses `paced()`: an asyncio
  client that sends request i at t0 + i/rate over a pool of keep-alive connections. Latency is
  measured from the *scheduled* send time, so a stalled server is not hidden by a stalled
  client (no coordinated omission); the pure service time (sent -> answered) is kept too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIGNATURE_HEADER = "Ten99Policy-Signature"


@dataclass(frozen=True)
class Delivery:
    event_id: str
    body: bytes
    signature: str


def tv1(body: bytes, secret: str, t: int) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def policy_events(n: int, secret: str, tag: str, now: int | None = None) -> list[Delivery]:
    """`n` distinct signed `policy.active` deliveries of about 1 KB each."""
    now = int(time.time()) if now is None else now
    pad = "Coverage bound for the assignment; see the certificate for limits. " * 12
    out = []
    for i in range(n):
        eid = f"ev_bench_{tag}_{i}"
        doc = {
            "id": eid,
            "type": "policy.active",
            "created": now,
            "data": {
                "id": f"po_{tag}_{i}",
                "object": "policy",
                "contractor": f"cn_{i}",
                "job": "jb_bench",
                "effective_date": now,
                "expiration_date": now + 86400 * 30,
                "premium": 4325,
                "notes": pad[:780],
            },
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        out.append(Delivery(eid, body, tv1(body, secret, now)))
    return out


def charge_events(n: int, secret: str, tag: str, now: int | None = None) -> list[Delivery]:
    """`n` signed `invoice.charge_card_succeeded` deliveries, contractor/invoice i each."""
    now = int(time.time()) if now is None else now
    out = []
    for i in range(n):
        eid = f"ev_charge_{tag}_{i}"
        doc = {
            "id": eid,
            "type": "invoice.charge_card_succeeded",
            "created": now,
            "data": {
                "id": f"in_{i}",
                "premium_due": 4325,
                "job": "jb_1",
                "contractor": {
                    "id": f"cn_{i}",
                    "email": f"c{i}@example.com",
                    "first_name": "A",
                    "last_name": "B",
                },
            },
        }
        body = json.dumps(doc).encode()
        out.append(Delivery(eid, body, tv1(body, secret, now)))
    return out


def write_for_wrk(path: Path, deliveries: list[Delivery]) -> None:
    """One `signature<TAB>body` line per delivery (compact JSON has no tabs or newlines)."""
    with open(path, "wb") as f:
        for d in deliveries:
            f.write(d.signature.encode() + b"\t" + d.body + b"\n")


# ------------------------------------------------------------------------------------------
# wrk
# ------------------------------------------------------------------------------------------

WRK_LUA = r"""
-- args: path, data file, offset, count, number of wrk threads
local threads, counter = {}, 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  local path, file = args[1], args[2]
  local offset, count, nthreads = tonumber(args[3]), tonumber(args[4]), tonumber(args[5])
  reqs, idx, wraps, nreqs = {}, 0, 0, 0
  local i = 0
  for line in io.lines(file) do
    if i >= offset + count then break end
    if i >= offset and (i - offset) % nthreads == tid then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["Ten99Policy-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    i = i + 1
  end
  nreqs = #reqs
end
function request()
  idx = idx + 1
  if idx > #reqs then idx, wraps = 1, wraps + 1 end
  return reqs[idx]
end
function done(summary, latency, requests)
  local w, slice = 0, 0
  for _, t in ipairs(threads) do
    w = w + t:get("wraps")
    slice = slice + t:get("nreqs")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non_2xx_3xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"wraps":%d,"slice":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    w, slice))
end
"""


@dataclass
class WrkResult:
    endpoint: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    wraps: int

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


def ensure_wrk() -> str:
    """wrk on PATH, installing Debian's package if needed; SystemExit with a reason if not."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log: list[str] = []
    for steps in (
        [["apt-get", "install", "-y", "wrk"]],
        [["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]],
    ):
        for argv in steps:
            print(f"bench: wrk not found; running {' '.join(argv)}", flush=True)
            try:
                run = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
                log.append(f"$ {' '.join(argv)} -> exit {run.returncode}\n{run.stderr[-600:]}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.append(f"$ {' '.join(argv)} -> {exc}")
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "bench: wrk is not installed and `apt-get install -y wrk` failed (this needs root and "
        "the Debian archive). Install wrk 4.x by hand and re-run.\n" + "\n".join(log)
    )


def run_wrk(
    wrk: str,
    base_url: str,
    endpoint: str,
    data_file: Path,
    script: Path,
    offset: int,
    count: int,
    threads: int = 2,
    connections: int = 32,
    seconds: int = 10,
) -> WrkResult:
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base_url,
        "--",
        endpoint,
        str(data_file),
        str(offset),
        str(count),
        str(threads),
    ]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^BENCH_JSON (\{.*\})$", run.stdout, re.M)
    if run.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    d = json.loads(match.group(1))
    secs = d["duration_us"] / 1e6
    return WrkResult(
        endpoint=endpoint,
        requests=d["requests"],
        seconds=round(secs, 3),
        rps=round(d["requests"] / secs, 1),
        p50_ms=d["p50_us"] / 1000,
        p90_ms=d["p90_us"] / 1000,
        p99_ms=d["p99_us"] / 1000,
        max_ms=d["max_us"] / 1000,
        non_2xx=d["non_2xx_3xx"],
        socket_errors=d["connect_errors"] + d["read_errors"] + d["write_errors"] + d["timeouts"],
        wraps=d["wraps"],
    )


# ------------------------------------------------------------------------------------------
# Paced open-loop sender
# ------------------------------------------------------------------------------------------


@dataclass
class Sent:
    index: int
    status: int  # 0: transport error or timeout
    latency_s: float  # scheduled -> answered
    service_s: float  # written -> answered
    answered_at: float  # wall clock (time.time()) when the answer was read


@dataclass
class PacedResult:
    rate: float
    duration_s: float
    sent: list[Sent] = field(default_factory=list)
    max_lag_ms: float = 0.0  # how late the dispatcher started a request, worst case
    dispatch_s: float = 0.0  # first to last dispatch, plus one interval

    def summary(self) -> dict[str, Any]:
        ok = [s for s in self.sent if 200 <= s.status < 300]
        lat = sorted(s.latency_s for s in ok)
        svc = sorted(s.service_s for s in ok)
        return {
            "target_rate": self.rate,
            "achieved_rate": round(len(self.sent) / self.dispatch_s, 1) if self.dispatch_s else 0.0,
            "requests": len(self.sent),
            "ok_2xx": len(ok),
            "non_2xx": len(self.sent) - len(ok),
            "p50_ms": round(percentile(lat, 50) * 1000, 2),
            "p99_ms": round(percentile(lat, 99) * 1000, 2),
            "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
            "service_p50_ms": round(percentile(svc, 50) * 1000, 2),
            "service_p99_ms": round(percentile(svc, 99) * 1000, 2),
            "max_dispatch_lag_ms": round(self.max_lag_ms, 2),
        }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-pct * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def ensure(self) -> None:
        if self.reader is None or self.reader.at_eof() or self.writer is None:
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> int:
        await self.ensure()
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            await self.close()
        return status


def _request_bytes(host: str, port: int, path: str, d: Delivery) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"{SIGNATURE_HEADER}: {d.signature}\r\nContent-Length: {len(d.body)}\r\n\r\n"
    )
    return head.encode() + d.body


async def _paced(
    host: str,
    port: int,
    path: str,
    deliveries: list[Delivery],
    rate: float,
    connections: int,
    timeout: float,
) -> PacedResult:
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    conns = [_Conn(host, port) for _ in range(connections)]
    for c in conns:
        await c.ensure()
        pool.put_nowait(c)
    result = PacedResult(rate=rate, duration_s=0.0)
    loop = asyncio.get_running_loop()

    async def one(i: int, scheduled: float, payload: bytes) -> None:
        conn = await pool.get()
        sent_at = loop.time()
        status = 0
        try:
            status = await asyncio.wait_for(conn.exchange(payload), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            await conn.close()
        finally:
            pool.put_nowait(conn)
        now = loop.time()
        result.sent.append(Sent(i, status, now - scheduled, now - sent_at, time.time()))

    tasks = []
    t0 = loop.time() + 0.05
    for i, d in enumerate(deliveries):
        scheduled = t0 + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_lag_ms = max(result.max_lag_ms, (loop.time() - scheduled) * 1000)
        tasks.append(asyncio.create_task(one(i, scheduled, _request_bytes(host, port, path, d))))
    result.dispatch_s = loop.time() - t0 + 1 / rate
    await asyncio.wait(tasks, timeout=timeout + 5)
    result.duration_s = loop.time() - t0
    for c in conns:
        await c.close()
    result.sent.sort(key=lambda s: s.index)
    return result


def paced(
    host: str,
    port: int,
    path: str,
    deliveries: list[Delivery],
    rate: float,
    connections: int = 16,
    timeout: float = 10.0,
) -> PacedResult:
    """Send every delivery once at a fixed `rate` (open loop); bounded by len/rate + timeout."""
    return asyncio.run(_paced(host, port, path, deliveries, rate, connections, timeout))
