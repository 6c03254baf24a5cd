"""1099Policy coverage events as they arrive, in the envelope shapes of the domain notes (§4.2).

`envelope()` builds the dict to send; `event()` the parsed Event, for the pure tests. One
contractor's story (`story()`) covers every family: an application session that names the
contractor, quote, policy and job; its policy (which names none of them); an assignment for a
second job; a certificate review; a card charge.
"""

from __future__ import annotations

import json
from typing import Any

from receiver.ingest import envelopes

T0 = 1_700_000_000
DAY = 86400


def envelope(
    etype: str, obj: dict[str, Any], created: int, event_id: str | None, shape: str = "A"
) -> dict[str, Any]:
    """Shape A: `data` is the object; B: `data.object`; C: no top-level id."""
    data: dict[str, Any] = {"object": obj} if shape == "B" else obj
    env: dict[str, Any] = {"type": etype, "created": created, "data": data}
    if shape != "C" and event_id is not None:
        env["id"] = event_id
    return env


def event(
    etype: str, obj: dict[str, Any], created: int, event_id: str | None = None, shape: str = "A"
) -> envelopes.Event:
    env = envelope(etype, obj, created, event_id or f"ev_{etype}_{created}", shape)
    return envelopes.parse(json.dumps(env).encode(), "1099policy")


def session(
    etype: str,
    created: int,
    *,
    contractor: str | None = "cn_1",
    sid: str = "ias_1",
    quote: str = "qt_1",
    policy: str | None = "pl_1",
    job: str = "jb_1",
    **extra: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": sid, "quote": quote, "job": job, **extra}
    if contractor:
        obj["contractor"] = contractor
    if policy:
        obj["policy"] = policy
    return envelope(etype, obj, created, f"ev_{etype}_{sid}_{created}")


def policy(
    etype: str,
    created: int,
    *,
    pid: str = "pl_1",
    quote: str = "qt_1",
    shape: str = "A",
    **extra: Any,
) -> dict[str, Any]:
    obj = {
        "id": pid,
        "quote": quote,
        "effective_date": T0,
        "expiration_date": T0 + 30 * DAY,
        "certificates": {
            "gl_coi_pdf_url": f"https://storage.googleapis.com/bound-policies/{pid}-gl.pdf",
            "wc_coi_pdf_url": f"/bound-policies/prod/{pid}-wc.pdf",
        },
        "created": created,
        **extra,
    }
    if shape == "C":
        obj.pop("status", None)
        obj["is_active"] = etype != "policy.cancelled"
    elif "status" not in extra:
        obj["status"] = "cancelled" if etype == "policy.cancelled" else "active"
    return envelope(etype, obj, created, f"ev_{etype}_{pid}_{created}", shape)


def assignment(
    etype: str,
    created: int,
    *,
    aid: str = "an_1",
    contractor: str = "cn_1",
    job: str = "jb_2",
    **extra: Any,
) -> dict[str, Any]:
    obj = {
        "id": aid,
        "contractor": contractor,
        "job": job,
        "policy": "pl_1",
        "coverage_type": ["general", "workers-comp"],
        "bind": True,
        "effective_date": T0 + 2 * DAY,
        "end_date": T0 + 12 * DAY,
        "certificates": {"gl_coi_pdf_url": f"https://example.com/{aid}-gl.pdf"},
        **extra,
    }
    if etype == "assignment.cancelled":
        obj.update(cancelled=True, cancellation_date=created, cancellation_reason="client_request")
    return envelope(etype, obj, created, f"ev_{etype}_{aid}_{created}")


def certificate(
    status: str, created: int, *, cid: str = "ci_1", contractor: str = "cn_1", shape: str = "B"
) -> dict[str, Any]:
    obj = {"id": cid, "contractor": contractor, "status": status, "created": created}
    if shape != "B":  # the full object; shape B is the guide's abbreviated one
        obj.update(filename="my-coi.pdf", pdf_url=f"https://example.com/{cid}.pdf")
    return envelope(f"certificate.{status}", obj, created, f"ev_cert_{cid}_{created}", shape)


def charge(
    result: str, created: int, *, invoice: str = "in_1", contractor: str = "cn_1", job: str = "jb_2"
) -> dict[str, Any]:
    obj = {
        "id": invoice,
        "object": "invoice",
        "contractor": contractor,
        "job": job,
        "premium_due": 4325,
    }
    return envelope(f"invoice.charge_card_{result}", obj, created, f"ev_charge_{invoice}_{created}")


def story() -> list[dict[str, Any]]:
    """A contractor's coverage from application to a cancelled assignment, as envelopes."""
    return [
        session("application.created", T0 - 300, policy=None),
        session("application.started", T0 - 200, policy=None),
        session("application.complete", T0 - 100),
        policy("policy.active", T0 - 90, shape="C"),
        policy("policy.active.media", T0 - 80),
        certificate("flagged", T0 - 50, shape="A"),
        certificate("approved", T0 - 40),
        charge("failed", T0 - 30),
        charge("succeeded", T0 - 20),
        assignment("assignment.active", T0 - 10),
        assignment("assignment.active", T0 - 10, aid="an_2", job="jb_3"),
        assignment("assignment.cancelled", T0 + DAY, aid="an_2", job="jb_3"),
        policy("policy.cancelled", T0 + 20 * DAY),
        policy("policy.reactivated", T0 + 21 * DAY),
    ]


def parse(env: dict[str, Any]) -> envelopes.Event:
    return envelopes.parse(json.dumps(env).encode(), "1099policy")
