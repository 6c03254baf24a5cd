"""The ops API under /api/ops: the JSON the console pages are built on (see console_auth.py
for who may call it, and views/openapi.py for its document)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from ..console.audit import AuditLog
from ..console.paging import parse_limit
from .console_auth import authenticate

bp = Blueprint("ops_api", __name__, url_prefix="/api/ops")


@bp.before_request
def _who() -> None:
    authenticate()


def _audit() -> AuditLog:
    audit: AuditLog = current_app.extensions["audit"]
    return audit


@bp.get("/audit")
def audit() -> dict[str, Any]:
    """The console's actions, newest first."""
    page = _audit().page(request.args.get("cursor"), parse_limit(request.args.get("limit")))
    return {"items": page.items, "next_cursor": page.next_cursor}
