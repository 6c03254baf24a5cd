"""Safe settings for the official `ten99policy` API client, which are process-wide globals.

The `ten99policy` client (1.1.12, forked from Stripe's) is configured through module globals
with unsafe defaults. `configure_ten99policy()` sets all of them, from `Contacts.__init__`:

* `log = 'debug'` prints every request and every response body (names, emails) to stderr;
  the `TEN99POLICY_LOG` environment variable can turn that back on, and every line also goes
  to the `ten99policy` logger whatever `log` says. We set `log = None`, clear the env-derived
  setting, and mute that logger (level above CRITICAL, no propagation, disabled).
* `verify_ssl_certs = False`, and its `RequestsClient` passes `verify=False` on every request
  regardless of that flag. We install our own `RequestsClient` whose session forces
  `verify=True` (which still honours `REQUESTS_CA_BUNDLE`), and set the flag to True too.
* The default timeout is 80 s; a stuck API would hold a worker that long. Our client uses
  the `timeout` given to `Contacts` (connect and read, each).
* `max_network_retries` is set to 0 explicitly: retries happen at job level, with backoff.
* `environment` is sent as the `Ten99Policy-Environment` header and defaults to `sandbox`
  even for a live key. We set it explicitly: the `environment` argument, else `production`
  for a key containing `_live_`, else `sandbox`.
* `api_key` ships with a hard-coded shared test key used whenever none is passed. We set it
  to None and pass our key on every call (`retrieve(id, api_key=...)`).
* `api_base` is only a global (resources have no per-call base): the URL is
  `api_base + "/api/v1/contractors/" + quote_plus(id)`, so a trailing slash is stripped.

Because these are process-wide, the last `Contacts` built in a process decides them; the
service builds one per process from one configuration. The session is shared by threads.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
import ten99policy
from ten99policy import http_client as t9_http
from ten99policy import util as t9_util


class _VerifyingSession(requests.Session):
    """A session that always verifies TLS certificates.

    The client's `RequestsClient` passes `verify=False` with every request, overriding any
    session setting, so the only place to turn verification back on is here.
    """

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = True
        return super().request(method, url, *args, **kwargs)


class _Client(t9_http.RequestsClient):  # type: ignore[misc]
    """The `ten99policy` HTTP client we install: our timeout, verified TLS."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout, session=_VerifyingSession(), verify_ssl_certs=True)
        self.timeout = timeout


def _mute(logger: logging.Logger) -> None:
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    logger.disabled = True


def configure_ten99policy(api_base: str, timeout: float, environment: str) -> None:
    """Make the process-wide `ten99policy` settings safe (see the module docstring)."""
    if not api_base.startswith(("http://", "https://")):
        raise ValueError("the 1099Policy API base must be an http(s) URL")
    if timeout <= 0:
        raise ValueError("the 1099Policy API timeout must be positive")
    ten99policy.log = None
    t9_util.TEN99POLICY_LOG = None
    _mute(logging.getLogger("ten99policy"))
    ten99policy.verify_ssl_certs = True
    ten99policy.max_network_retries = 0
    ten99policy.api_key = None
    ten99policy.api_base = api_base.rstrip("/")
    ten99policy.environment = environment
    current = ten99policy.default_http_client
    if not (isinstance(current, _Client) and current.timeout == timeout):
        ten99policy.default_http_client = _Client(timeout)


def environment_for(api_key: str | None) -> str:
    return "production" if api_key and "_live_" in api_key else "sandbox"
