"""The product as a user installs it, not as the tests import it.

- The wheel: built as a release is (`make dist`: the wheel and dist/requirements.txt exported
  from uv.lock), installed with pip into a fresh virtualenv outside the checkout, its two
  Procfile lines run from an empty folder against the test's Redis. A signed event becomes one
  .eml with text and HTML parts; the console and the coverage page that email links to answer
  200. This is what broke when the wheel held only .py files.
- The README's first command, `make run`, from a clean clone, and the tour's first line beside
  it: the email is in var/outbox. This is what broke when a fresh install resolved a gunicorn
  whose gevent worker needed a package nothing declared.

Both are real processes; the bounds below only end a broken run.
"""

from __future__ import annotations

import email
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.store.embedded import free_port
from tests import console_users
from tests.events import charge_succeeded
from tests.processes import stop, wait_until
from tests.signing import body_of, tv1_header

ROOT = Path(__file__).resolve().parent.parent
UV = ROOT / ".uv" / "bin" / "uv"

pytestmark = pytest.mark.install


def _run(argv: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{shlex.join(argv)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _answers(url: str) -> bool:
    try:
        return _get(url) == 200
    except OSError:
        return False


def _post_signed(port: int, event: dict[str, Any]) -> int:
    body = body_of(event)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/1099policy",
        data=body,
        headers={"Ten99Policy-Signature": tv1_header(body), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as r:
        return int(r.status)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv, outside the checkout, holding the built wheel and the pinned
    runtime packages and nothing else; yields its bin folder."""
    assert UV.exists(), f"{UV} is made by the Makefile: run the tests with `make test`"
    where = tmp_path_factory.mktemp("install")
    dist = where / "dist"
    _run(["make", "dist", f"DIST={dist}"], ROOT)
    (wheel,) = dist.glob("ten99_receiver-*.whl")
    venv = where / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], where)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "--require-hashes", "-r", str(dist / "requirements.txt")], where)
    _run([*pip, "--no-deps", str(wheel)], where)
    yield venv / "bin"


def test_the_wheel_carries_the_templates_and_the_processes(installed: Path) -> None:
    """What the service reads at run time is inside the installed package."""
    python = str(installed / "python")
    code = (
        "import receiver, receiver.resources as r; "
        "print(receiver.__file__); print(r.templates('emails')); print(r.template_root())"
    )
    lines = _run([python, "-c", code], installed).stdout.split()
    package = Path(lines[0]).parent
    assert ROOT not in package.parents  # the installed copy, not this checkout
    for kind, name in (("emails", "payment_confirmation.txt"), ("console", "events.html")):
        assert (package / "templates" / kind / name).is_file()
    assert Path(lines[1]) == package / "templates" / "emails"
    for script in ("receiver-web", "receiver-worker", "flask"):
        assert (installed / script).exists()


def test_the_procfile_runs_from_an_empty_folder(
    installed: Path, config: dict[str, Any], redis: Any, tmp_path: Path
) -> None:
    """The Procfile's two lines, from a folder holding nothing: a signed event is mailed
    (text and HTML), the console and the coverage page render."""
    empty = tmp_path / "empty"
    empty.mkdir()
    outbox = tmp_path / "outbox"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        **{k: str(v) for k, v in config.items()},
        "PATH": f"{installed}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORT": str(port),
        "OUTBOX_DIR": str(outbox),
        "CONSOLE_USERS": console_users.USERS,
        "SECRET_KEY": "a-test-secret-key-of-some-length",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "WORKER_PROCESSES": "1",
    }
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in procfile}
    procs = [
        subprocess.Popen(
            shlex.split(command),
            cwd=empty,
            env=env,
            stdout=logs[name],
            stderr=subprocess.STDOUT,
        )
        for name, command in procfile.items()
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _answers(base + "/healthz"), 60), (
            tmp_path / "web.log"
        ).read_text()
        assert _post_signed(port, charge_succeeded("inv_wheel")) == 202
        assert wait_until(lambda: list(outbox.glob("*.eml")), 60), (
            tmp_path / "worker.log"
        ).read_text()[-3000:]
        (eml,) = outbox.glob("*.eml")
        message = email.message_from_bytes(eml.read_bytes())
        parts = {part.get_content_type(): part for part in message.walk()}
        assert {"text/plain", "text/html"} <= set(parts)
        text = parts["text/plain"].get_payload(decode=True).decode()
        assert "insurance" in text.lower()
        auth = console_users.basic("olga")
        assert _get(base + "/admin/events", auth) == 200
        assert _get(base + "/admin/health", auth) == 200
        link = re.search(re.escape(base) + r"/coverage/\S+", text)
        assert link, text
        assert _get(link.group(0)) == 200
    finally:
        for proc in procs:
            stop(proc)  # type: ignore[arg-type]
        for out in logs.values():
            out.close()
    assert not list(empty.iterdir())  # nothing written beside the processes


def _readme_commands() -> tuple[str, str]:
    """The README's first command and the tour's first line."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    first = blocks[0].splitlines()[0].split("#")[0].strip()
    tour = blocks[1].splitlines()[0].split("#")[0].strip()
    return first, tour


def test_make_run_from_a_clean_clone_and_the_tour(tmp_path: Path) -> None:
    """`make run` in a fresh clone of this commit, then the tour's first line in another
    terminal: an email lands in var/outbox. Then Ctrl-C stops everything."""
    first, tour = _readme_commands()
    assert first == "make run" and "send-test-event" in tour
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(ROOT), str(clone)], tmp_path)
    uv_cache = os.environ.get("UV_CACHE_DIR")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "REDIS_", "MAKE", "MFLAGS"))
    }
    env["PORT"] = str(free_port())
    if uv_cache:
        env["UV_CACHE_DIR"] = uv_cache
    log = (tmp_path / "make-run.log").open("wb")
    run = subprocess.Popen(
        shlex.split(first),
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        healthz = f"http://127.0.0.1:{env['PORT']}/healthz"
        up = wait_until(lambda: run.poll() is not None or _answers(healthz), 420)
        assert up and run.poll() is None, (tmp_path / "make-run.log").read_text()[-4000:]
        done = subprocess.run(
            shlex.split(tour), cwd=clone, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0 and "202" in done.stdout, done.stdout + done.stderr
        outbox = clone / "var" / "outbox"
        assert wait_until(lambda: list(outbox.glob("*.eml")), 60), (
            tmp_path / "make-run.log"
        ).read_text()[-4000:]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal
            try:
                run.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait(10)
        log.close()
    shutil.rmtree(clone / ".venv", ignore_errors=True)
