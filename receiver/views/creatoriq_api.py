"""`POST /api/creatoriq/check`: would this creator sync from CreatorIQ, and if not, what to fix.

Bearer-token protected like the coverage API (the token check comes first). The rules are
`creatoriq.checks` (pure); this view only parses the request and reads the one clock. A body
the check cannot read at all (not JSON, not an object, `creator` or `campaign` not objects) is
a 400 naming the field; a wrong field *inside* those objects is what the check reports (200).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, request

from ..creatoriq.checks import check_creator
from ..errors import BadRequest
from .auth import authorize

bp = Blueprint("creatoriq_api", __name__)


def _body() -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(cache=False))
    except ValueError:  # includes bytes that are not UTF-8 text
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    for name in ("creator", "campaign"):
        if not isinstance(body.get(name), dict):
            raise BadRequest(f"{name} must be an object")
    return body


@bp.post("/api/creatoriq/check")
def check() -> dict[str, Any]:
    """The problems that would stop the creator's sync, each with its fix; ok when none."""
    authorize(current_app.config["RECEIVER"].API_TOKENS)
    body = _body()
    now = current_app.extensions["clock"]()
    problems = check_creator(body["creator"], body["campaign"], now)
    return {"ok": not problems, "problems": [p.as_dict() for p in problems]}
