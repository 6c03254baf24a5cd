"""The API's bearer-token check, shared by every view under `/api/` that needs `API_TOKENS`."""

from __future__ import annotations

import hmac

from flask import request

from ..errors import Unauthorized


def authorize(tokens: tuple[str, ...]) -> None:
    """Accept `Authorization: Bearer <one of API_TOKENS>`, compared in constant time."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("a bearer token is required")
    presented = given.strip().encode()
    # Compare with every token, not stopping at a match, so timing says nothing about which.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented, token.encode())
    if not matched:
        raise Unauthorized("the bearer token is not valid")
