"""Shared fixtures: a real redis-server per test session, the app, a client, a SendGrid stand-in."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from receiver import create_app
from receiver.config import load_config
from receiver.pipeline import tasks
from receiver.pipeline.runtime import Runtime, build
from receiver.store.embedded import RedisServer
from tests.callback_server import SECRET as CALLBACK_SECRET
from tests.callback_server import CallbackServer
from tests.clocks import TestClock
from tests.signing import PLATFORM_SECRET, TEN99_SECRET, body_of, sw_headers, tv1_header

# The tiers. `make check` runs the tests marked with none of these; `make test` runs them all,
# on every core, then the `alone` ones (timing-sensitive, and `slow`) with nothing beside them.
# `browser` and `processes` are found here from what a test uses, not tagged by hand:
# - browser: the test uses the session's Chromium (the `chromium` fixture).
# - processes: the test, a fixture it uses, or a helper of tests/ either calls, reaches
#   `subprocess` or starts a RedisServer: the web and worker processes (tests/processes.py),
#   worker.py, the flask command, redis-servers and sentinels beyond the session's one.
# The session's shared redis-server and SendGrid stand-in (session fixtures of this file) are
# the fast tier's too. `_no_undeclared_programs` keeps the finding honest: a test found
# in-process that starts a program fails, naming it.
_STARTERS: tuple[object, ...] = (subprocess, subprocess.Popen, subprocess.run, RedisServer)


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)  # lambdas, nested functions, comprehensions


def _starts_programs(obj: object, seen: set[int]) -> bool:
    """Whether a function or class of tests/ reaches a program starter, following the
    functions, classes and modules of tests/ it names."""
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    if isinstance(obj, type):
        return any(_starts_programs(member, seen) for member in vars(obj).values())
    if isinstance(obj, staticmethod | classmethod | property):
        return any(
            _starts_programs(getattr(obj, part), seen)
            for part in ("__func__", "fget", "fset")
            if getattr(obj, part, None) is not None
        )
    func = inspect.unwrap(obj) if callable(obj) else None
    if not isinstance(func, types.FunctionType):
        return False
    names = {name for code in _code_objects(func.__code__) for name in code.co_names}
    scopes = [func.__globals__]
    scopes += [vars(value) for value in func.__globals__.values() if _ours(value, module=True)]
    # An import inside the function names its module (`import subprocess`, `from
    # tests.processes import start_web`): its names count too.
    modules = [sys.modules[name] for name in names if name in sys.modules]
    if subprocess in modules:
        return True
    scopes += [vars(module) for module in modules]
    for name in names:
        for scope in scopes:
            value = scope.get(name)
            if any(value is starter for starter in _STARTERS):
                return True
            if _ours(value) and _starts_programs(value, seen):
                return True
    return False


def _ours(value: object, module: bool = False) -> bool:
    """A module of tests/ (module=True), or a function or class defined in one."""
    if module:
        return isinstance(value, types.ModuleType) and value.__name__.startswith("tests.")
    return isinstance(value, type | types.FunctionType) and getattr(
        value, "__module__", ""
    ).startswith("tests.")


def _shared(fixturedef: Any) -> bool:
    """A session fixture of this file (started once, shared by every tier), or the check."""
    if fixturedef.argname == "_no_undeclared_programs":
        return True
    here = Path(inspect.unwrap(fixturedef.func).__code__.co_filename) == Path(__file__)
    return here and fixturedef.scope == "session"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    found: dict[tuple[object, ...], bool] = {}  # the cases of one parametrized test share it
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        fixtures = item._fixtureinfo.name2fixturedefs
        if "chromium" in fixtures:
            item.add_marker(pytest.mark.browser)
        funcs = (item.function,) + tuple(
            fixturedef.func
            for defs in fixtures.values()
            for fixturedef in defs
            if not _shared(fixturedef)
        )
        if funcs not in found:
            seen: set[int] = set()
            found[funcs] = any(_starts_programs(func, seen) for func in funcs)
        if found[funcs]:
            item.add_marker(pytest.mark.processes)
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.alone)
        if item.get_closest_marker("install"):  # one build and clone at a time, one worker
            item.add_marker(pytest.mark.xdist_group("install"))


@pytest.fixture(autouse=True)
def _no_undeclared_programs(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test of the fast tier (no `processes` or `browser` mark) that starts a program fails:
    the finding above missed how it does, and `make check` would run it."""
    if any(request.node.get_closest_marker(name) for name in ("processes", "browser")):
        return

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        pytest.fail(
            f"{request.node.nodeid} starts {args!r} but was found in-process: "
            "name what starts it in tests/conftest.py's _STARTERS",
            pytrace=False,
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def config(redis_server: RedisServer, tmp_path: Path) -> dict[str, Any]:
    return {
        "REDIS_URL": redis_server.url,
        "TEN99POLICY_WEBHOOK_SECRETS": TEN99_SECRET,
        "PLATFORM_WEBHOOK_SECRETS": PLATFORM_SECRET,
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "EMAIL_FROM": "notices@example.com",
    }


@pytest.fixture
def test_clock() -> TestClock:
    """The one clock of a test: the app and the runtime both read it."""
    return TestClock()


@pytest.fixture
def app(config: dict[str, Any], redis: redis_lib.Redis, test_clock: TestClock) -> Any:
    app = create_app(config, clock=test_clock)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


class Sender:
    """Posts signed deliveries to the app, as 1099Policy and the platform would, signed at the
    test clock's time unless a test says otherwise."""

    def __init__(self, client: Any, clock: TestClock) -> None:
        self.client = client
        self.clock = clock

    def ten99(self, event: dict[str, Any] | bytes, **kw: Any) -> Any:
        body = body_of(event)
        kw.setdefault("t", int(self.clock()))
        headers = {"Ten99Policy-Signature": tv1_header(body, **kw)}
        return self.client.post("/webhooks/1099policy", data=body, headers=headers)

    def platform(self, event: dict[str, Any] | bytes, msg_id: str, **kw: Any) -> Any:
        body = body_of(event)
        kw.setdefault("t", int(self.clock()))
        return self.client.post(
            "/webhooks/platform", data=body, headers=sw_headers(body, msg_id, **kw)
        )


@pytest.fixture
def send(client: Any, test_clock: TestClock) -> Sender:
    return Sender(client, test_clock)


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app behind a real threaded HTTP server on a free port; yields its base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    # shutdown() waits for the loop's next poll: at the default 0.5 s, half a second a test.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="session")
def sendgrid_server() -> Iterator[Any]:
    from tests.sendgrid_server import SendGridServer

    with SendGridServer() as server:
        yield server


@pytest.fixture
def sendgrid(sendgrid_server: Any, config: dict[str, Any]) -> Any:
    """The SendGrid stand-in, emptied, with the app and workers configured to use it."""
    sendgrid_server.reset()
    config.update(
        SENDGRID_API_KEY="SG.test-key",
        SENDGRID_API_HOST=sendgrid_server.url + "/",
        # Only a bound: the stand-in answers at once, but a loaded machine may be slow to
        # run it. Tests of timeouts set a short one on `rt.mailer` themselves.
        SENDGRID_TIMEOUT_SECONDS="10",
    )
    return sendgrid_server


@pytest.fixture
def rt(
    config: dict[str, Any], redis: redis_lib.Redis, sendgrid: Any, test_clock: TestClock
) -> Iterator[Runtime]:
    """The worker runtime on the test's clock, installed for in-process tasks."""
    built = build(load_config(config), clock=test_clock)
    tasks.install(built)
    yield built
    tasks.install(None)


@pytest.fixture
def drain(rt: Any) -> Any:
    """Run every queued job in this process (RQ SimpleWorker, burst), like a worker would:
    over worker.py's queues in its order (notices, then events).

    `drain(scheduler=True)` first has RQ's scheduler queue the scheduled jobs that are due by
    the wall clock (RQ's, not the test's), as a worker started with its scheduler does.
    """
    from rq import SimpleWorker

    def run(scheduler: bool = False, queues: list[Any] | None = None) -> None:
        """`queues` instead of the worker's list: a worker dedicated to some of them."""
        if scheduler:
            # A scheduler process left by a real worker an earlier test killed (the crash
            # tests SIGKILL theirs) may still hold RQ's scheduler locks; this drain is the
            # only scheduler the test means to run, so it takes them over.
            for lock in rt.redis.scan_iter("rq:scheduler-lock:*"):
                rt.redis.delete(lock)
        worker = SimpleWorker(
            rt.queues if queues is None else queues,
            connection=rt.redis,
            serializer=rt.queue.serializer,
        )
        worker.work(burst=True, with_scheduler=scheduler, logging_level="WARNING")

    return run


@pytest.fixture
def callback(config: dict[str, Any]) -> Iterator[CallbackServer]:
    """The platform's `coverage.updated` endpoint, configured as PLATFORM_CALLBACK_URL."""
    with CallbackServer() as server:
        config.update(PLATFORM_CALLBACK_URL=server.url, PLATFORM_CALLBACK_SECRET=CALLBACK_SECRET)
        yield server


@pytest.fixture
def clock(test_clock: TestClock) -> TestClock:
    """The test's clock, frozen at this second and moved by the test (no sleeping)."""
    return test_clock.freeze()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session (installed with apt-get when missing)."""
    from tests.browser import BrowserUnavailable, start_driver

    try:
        driver = start_driver()
    except BrowserUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium: Any) -> Any:
    """The session's Chromium, at a desktop width; `browser.viewport(390)` for a phone."""
    from tests.browser import DESKTOP, Browser

    return Browser(chromium).viewport(DESKTOP).color_scheme("light")


@pytest.fixture
def retrying(rt: Any, send: Any) -> dict[str, Any]:
    """An event whose first try failed (its body unreadable): RQ will try it again."""
    from receiver.store.workers import ReceiverWorker
    from tests.events import charge_succeeded

    event = charge_succeeded("in_retry")
    send.ten99(event)
    rt.redis.hset(f"event:1099policy:{event['id']}", "body", b"{broken")
    ReceiverWorker(rt.queues, connection=rt.redis, serializer=rt.queue.serializer).work(
        burst=True, logging_level="WARNING"
    )
    return event
