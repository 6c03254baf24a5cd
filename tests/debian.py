"""Debian packages the tests need on a fresh machine (CI's), installed with apt-get when missing.

Used for Chromium (tests/browser.py) and promtool (tests/test_alerts.py). An install runs under
a file lock per package set, so parallel test sessions on one machine do not run apt at once,
and waits for dpkg's own lock rather than failing when something else is running apt.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path


class PackagesUnavailable(RuntimeError):
    """A binary is missing and its packages could not be installed; the message says why."""


def ensure_packages(
    binaries: Sequence[Path],
    packages: Sequence[str],
    error: type[Exception] = PackagesUnavailable,
) -> None:
    """Install Debian's `packages` (apt-get update, then install) when one of `binaries` is
    missing; raise `error` saying why when that cannot be done."""

    def installed() -> bool:
        return all(binary.exists() for binary in binaries)

    if installed():
        return
    names = " ".join(packages)
    missing = " or ".join(str(b) for b in binaries)
    lock_path = Path(tempfile.gettempdir()) / f"ten99-receiver-{packages[0]}-install.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be installing: wait for it
        if installed():
            return
        if shutil.which("apt-get") is None:
            raise error(
                f"{missing} is missing and there is no apt-get to install it; "
                f"install the Debian packages {names}"
            )
        if os.geteuid() != 0:
            raise error(
                f"{missing} is missing and installing it needs root: "
                f"run `sudo apt-get install -y {names}`"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        wait = ["-o", "DPkg::Lock::Timeout=600"]
        steps = [
            ["apt-get", *wait, "update"],
            ["apt-get", *wait, "install", "-y", "--no-install-recommends", *packages],
        ]
        for step in steps:
            proc = subprocess.run(
                step, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
            )
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
                raise error(
                    f"`{' '.join(step)}` exited {proc.returncode}; the tests need Debian's "
                    f"{names}:\n" + "\n".join(tail)
                )
        if not installed():
            raise error(f"apt-get installed {names} but {missing} is still missing")
