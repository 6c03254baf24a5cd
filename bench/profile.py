"""`bench/run.py --profile`: where the receive path's CPU goes, by sampling gunicorn with py-spy.

One extra wrk run against `/webhooks/1099policy` (not counted in the results) while py-spy
samples every gunicorn worker, only threads holding the GIL (`--gil`), i.e. Python CPU time,
not time spent waiting for Redis. The summary is the share of those samples that each function
accounts for, inclusive of what it calls, over the samples inside the WSGI app; it is written
to bench/results/profile-receive.txt and its head printed.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .procs import VENV_BIN

_LOCATION = re.compile(r":\d+\)")


def ensure_py_spy() -> str:
    """py-spy from the venv, installing it from PyPI into the venv when missing."""
    exe = VENV_BIN / "py-spy"
    if not exe.exists():
        print("bench: installing py-spy into the venv for --profile", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True, timeout=300
        )
    if not exe.exists():
        found = shutil.which("py-spy")
        if not found:
            raise SystemExit("bench: py-spy is not available; --profile needs it")
        return found
    return str(exe)


def summarize(raw: Path, within: str = "Flask.wsgi_app ", top: int = 40) -> str:
    """Inclusive share per function of the samples whose stack contains `within`."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [_LOCATION.sub(")", f) for f in stack.split(";")]
        starts = [i for i, f in enumerate(frames) if f.startswith(within)]
        if not starts:
            continue
        frames = frames[starts[0] :]  # the app and below; not gunicorn's threads around it
        n = int(count)
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    if not total:
        return "no samples inside the app (py-spy may lack ptrace permission)\n"
    lines = [f"{total} GIL-holding samples inside {within}; inclusive share:"]
    lines += [f"{n / total * 100:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "self share (top 15):"]
    lines += [f"{n / total * 100:5.1f}%  {name}" for name, n in own.most_common(15)]
    return "\n".join(lines) + "\n"


def profile_receive(gunicorn_pid: int, seconds: int, run: Callable[[], Any], out: Path) -> str:
    """Sample gunicorn while `run()` drives load; write and return the summary."""
    spy = ensure_py_spy()
    raw = out.with_suffix(".raw")
    argv = [
        spy, "record", "--pid", str(gunicorn_pid), "--subprocesses", "--gil", "--nonblocking",
        "--rate", "200", "--duration", str(seconds), "--format", "raw", "--output", str(raw),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run()
        _, err = proc.communicate(timeout=seconds + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    if not raw.exists():
        return f"py-spy produced no profile: {err.decode(errors='replace')[-400:]}\n"
    text = summarize(raw)
    out.write_text(text)
    raw.unlink()
    return text
