"""Which peers are our own proxies (CONSOLE_TRUSTED_PROXIES, CIDRs), and what we take from them.

Only a request whose TCP peer is in the list may name the console user in
CONSOLE_TRUSTED_HEADER, and only its `X-Forwarded-For/-Proto/-Host/-Port/-Prefix` are applied
(werkzeug's ProxyFix, one proxy deep), so the client address the sign-in limits count, the
CSRF cookie's `Secure` flag and the links are right behind a TLS proxy. From any other peer
those headers are dropped before the app sees them: a client cannot claim an address, a
scheme or a user.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")
_FORWARDED_MORE = ("HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX")


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ValueError naming a bad one."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def _trusted(peer: str | None, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(address in net for net in trusted)


class TrustedProxies:
    """WSGI middleware: ProxyFix for peers in `trusted`, forwarded headers dropped otherwise."""

    def __init__(self, app: Callable[..., Any], trusted: tuple[Network, ...]) -> None:
        self.trusted = trusted
        self.plain = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR")
        environ["receiver.peer"] = peer
        if _trusted(peer, self.trusted):
            return self.fixed(environ, start_response)
        for name in (*_FORWARDED, *_FORWARDED_MORE):
            environ.pop(name, None)
        return self.plain(environ, start_response)


def from_trusted_proxy() -> bool:
    """Whether this request's TCP peer is one of CONSOLE_TRUSTED_PROXIES."""
    trusted: tuple[Network, ...] = current_app.extensions["trusted_proxies"]
    return _trusted(request.environ.get("receiver.peer", request.remote_addr), trusted)
