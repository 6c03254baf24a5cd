"""The operator's console at /admin: server-rendered pages over the ops API's functions.

No JavaScript and no build step: filters are GET forms, actions are POST forms carrying the
CSRF token of a SameSite=Strict cookie (console_auth.py), and each action redirects back with
what it did. Lists mask personal data (console/masking.py); detail pages show it in full. A
notice's email is shown as the recipient sees it, in an iframe sandboxed without scripts,
forms or same-origin rights.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.wrappers import Response as BaseResponse

from ..console import actions, events, notices, replays
from ..console.health import health
from ..console.paging import parse_limit
from ..console.timeline import find_by_email, find_by_name, summary, timeline
from ..delivery.emails import NOTICES, money
from ..delivery.samples import SAMPLE_CONTEXTS
from ..errors import (
    BadRequest,
    NotFound,
    ReceiverError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from ..ingest.envelopes import SOURCES
from ..resources import template_root
from .console_auth import (
    CSRF_COOKIE,
    CSRF_FIELD,
    audit_log,
    authenticate,
    check_csrf,
    csrf_token,
    current_user,
    require_operator,
    runtime,
)

bp = Blueprint("console", __name__, url_prefix="/admin", template_folder=str(template_root()))

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
    # The email iframe is srcdoc (it inherits this policy): inline styles and remote images
    # of the email itself; no script anywhere.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src https: data:; form-action 'self'; frame-ancestors 'none'",
}


@bp.before_request
def _who() -> None:
    authenticate()
    if request.method == "POST":
        check_csrf()
        require_operator()


@bp.after_request
def _secure(response: Response) -> Response:
    response.headers.update(_HEADERS)
    token = g.get("new_csrf")
    if token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path="/admin",
        )
    return response


@bp.errorhandler(ReceiverError)
def _error(exc: ReceiverError) -> tuple[str, int, dict[str, str]]:
    headers = {"WWW-Authenticate": exc.challenge} if isinstance(exc, Unauthorized) else {}
    if isinstance(exc, TooManyRequests | Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    page = render_template(
        "console/error.html", status=exc.status_code, code=exc.code, detail=exc.detail or ""
    )
    return page, exc.status_code, headers


@bp.app_template_filter("when")
def _when(value: float | None) -> str:
    if not value:
        return "—"
    return datetime.fromtimestamp(float(value), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# Amounts as the emails state them ($1,234.50); templates leave out an unknown one.
bp.add_app_template_filter(money, "dollars")


@bp.app_template_filter("breakable")
def _breakable(value: str) -> Markup:
    """An event type or id that may wrap after its dots and underscores (a phone's narrow
    column), not mid-word."""
    return Markup(str(escape(value)).replace(".", ".<wbr>").replace("_", "_<wbr>"))


@bp.context_processor
def _common() -> dict[str, Any]:
    user = g.get("console_user")
    return {
        "user": user,
        "csrf_field": CSRF_FIELD,
        "csrf": csrf_token() if user is not None else "",
        # Only a message of ours: `?done=` names one by its code, so a link someone else made
        # cannot put words of theirs on the console's page.
        "message": DONE.get(request.args.get("done", ""), ""),
    }


def _page(render: str, **context: Any) -> str:
    return render_template(f"console/{render}.html", **context)


# What an action did, by the code its redirect carries in `?done=`.
DONE = {
    "replayed": "Replay queued: a worker processes the event again; no email goes out twice.",
    "bulk-replay": "Bulk replay queued.",
    "retried": "Queued to be sent again.",
    "cancelled": "Cancelled: it will not be sent.",
}


def _back(endpoint: str, done: str, **values: Any) -> BaseResponse:
    """Back to `endpoint` with the banner of `done` (a key of DONE)."""
    return redirect(url_for(endpoint, **values) + "?" + urlencode({"done": done}), code=303)


@bp.get("")
@bp.get("/")
def home() -> BaseResponse:
    return redirect(url_for("console.events_page"))


@bp.get("/events")
def events_page() -> str:
    args = {k: v for k, v in request.args.items() if v and k != "done"}
    f = events.parse_filter(args)
    got = events.page(runtime().redis, f, parse_limit(args.get("limit")), args.get("cursor"))
    query = {k: v for k, v in args.items() if k != "cursor"}
    next_url = (
        url_for("console.events_page") + "?" + urlencode({**query, "cursor": got.next_cursor})
        if got.next_cursor
        else None
    )
    return _page(
        "events",
        items=got.items,
        filter=args,
        next_url=next_url,
        sources=SOURCES,
        statuses=events.STATUSES,
    )


@bp.get("/events/<source>/<path:event_id>")
def event_page(source: str, event_id: str) -> str:
    if source not in SOURCES:
        raise NotFound("no such source")
    found = notices.event_or_404(runtime(), source, event_id)
    return _page(
        "event",
        event=found,
        body=json.dumps(found["body"], indent=2, sort_keys=True, ensure_ascii=False),
        headers=json.dumps(found["headers"], indent=2, sort_keys=True),
    )


@bp.post("/events/<source>/<path:event_id>/replay")
def replay_event(source: str, event_id: str) -> BaseResponse:
    if source not in SOURCES:
        raise NotFound("no such source")
    reason = actions.reason_of(request.form.get("reason"), required=False)
    actions.replay_event(runtime(), audit_log(), current_user().name, source, event_id, reason)
    return _back("console.event_page", "replayed", source=source, event_id=event_id)


_FILTER_FIELDS = ("source", "type", "status", "contractor", "since", "until")


@bp.get("/replays")
def replays_page() -> str:
    args = {k: request.args[k] for k in _FILTER_FIELDS if request.args.get(k)}
    preview = None
    if request.args.get("preview"):  # a scan, though bounded: an operator's, not any viewer's
        require_operator()
        preview = replays.dry_run(runtime(), events.parse_filter(args))
    return _page(
        "replays",
        filter=args,
        preview=preview,
        sources=SOURCES,
        statuses=events.STATUSES,
        fields=_FILTER_FIELDS,
    )


@bp.post("/replays")
def start_replay() -> BaseResponse:
    args = {k: request.form[k] for k in _FILTER_FIELDS if request.form.get(k)}
    f = events.parse_filter(args)
    reason = actions.reason_of(request.form.get("reason"), required=True)
    started = actions.bulk_replay(runtime(), audit_log(), current_user().name, f, False, reason)
    return _back("console.replay_page", "bulk-replay", replay_id=started["id"])


@bp.get("/replays/<replay_id>")
def replay_page(replay_id: str) -> str:
    found = replays.progress(runtime(), replay_id) if len(replay_id) <= 40 else None
    if found is None:
        raise NotFound("no such bulk replay")
    return _page("replay", run=found)


@bp.get("/notices")
def notices_page() -> str:
    args = {k: v for k, v in request.args.items() if v and k != "done"}
    f = notices.parse_notice_filter(args)
    rt = runtime()
    got = notices.page(rt.redis, f, rt.clock(), parse_limit(args.get("limit")), args.get("cursor"))
    query = {k: v for k, v in args.items() if k != "cursor"}
    next_url = (
        url_for("console.notices_page") + "?" + urlencode({**query, "cursor": got.next_cursor})
        if got.next_cursor
        else None
    )
    return _page(
        "notices",
        items=got.items,
        filter=args,
        next_url=next_url,
        states=notices.STATES,
        names=NOTICES,
    )


@bp.get("/notices/<rid>")
def notice_page(rid: str) -> str:
    return _page("notice", notice=notices.record_or_404(runtime(), rid))


@bp.post("/notices/<rid>/<action>")
def notice_action(rid: str, action: str) -> BaseResponse:
    if action not in ("retry", "cancel"):
        raise NotFound("no such action")
    reason = actions.reason_of(request.form.get("reason"), required=action == "retry")
    act = actions.retry_notice if action == "retry" else actions.cancel_notice
    act(runtime(), audit_log(), current_user().name, rid, reason)
    return _back("console.notice_page", "retried" if action == "retry" else "cancelled", rid=rid)


@bp.get("/contractors")
def contractors_page() -> BaseResponse | str:
    query = request.args.get("q", "").strip()
    if not query:
        return _page("contractors", query="", found=None)
    if "@" in query:
        return _page("contractors", query=query, found=find_by_email(runtime().redis, query))
    if events.ID.fullmatch(query) and "_" in query:
        return redirect(url_for("console.timeline_page", contractor_id=query))
    if len(query) > 100:
        raise BadRequest("search by a contractor id (cn_...), a name or an email address")
    found = find_by_name(runtime().redis, query)
    if not found and events.ID.fullmatch(query):  # an id of another shape: open it
        return redirect(url_for("console.timeline_page", contractor_id=query))
    return _page("contractors", query=query, found=found)


@bp.get("/contractors/<contractor_id>")
def timeline_page(contractor_id: str) -> str:
    if not events.ID.fullmatch(contractor_id):
        raise BadRequest("contractor id is malformed")
    rt = runtime()
    now = rt.clock()
    items = timeline(rt.redis, contractor_id, now)
    about = summary(rt.redis, rt.payments, contractor_id, items, now)
    return _page("timeline", contractor=contractor_id, items=items, summary=about)


@bp.get("/health")
def health_page() -> str:
    return _page("health", health=health(runtime()))


@bp.get("/audit")
def audit_page() -> str:
    cursor = request.args.get("cursor")
    got = audit_log().page(cursor, parse_limit(request.args.get("limit")))
    next_url = (
        url_for("console.audit_page") + "?" + urlencode({"cursor": got.next_cursor})
        if got.next_cursor
        else None
    )
    return _page("audit", items=got.items, next_url=next_url)


@bp.get("/previews")
def previews_page() -> str:
    return _page("previews", names=NOTICES)


@bp.get("/previews/<notice>")
def preview_page(notice: str) -> str:
    if notice not in NOTICES:
        raise NotFound("no such notice")
    email = runtime().renderer.render(notice, copy.deepcopy(SAMPLE_CONTEXTS[notice]))
    return _page("preview", notice=notice, email=email)
