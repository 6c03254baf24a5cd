"""Every Redis key the service writes, built here and nowhere else.

docs/redis-keys.md lists each family with its type, TTL, writer and reader, and a test runs the
whole pipeline and fails on any key in Redis that the table does not name. RQ's own keys
(`rq:*`) are RQ's business and are only listed there.
"""

from __future__ import annotations

# Sorted sets of unfinished work, scored by when it is due; the sweeper's to-do lists.
EVENTS_PENDING = "events:pending"
NOTICES_PENDING = "notices:pending"
NOTICES_AWAITING = "notices:awaiting"  # contractor ids with notices waiting for a contact
# Interrupted sends waiting for SendGrid's events, scored by when they are sent again.
NOTICES_INTERRUPTED = "notices:interrupted"
SWEEPER_LOCK = "sweeper:lock"
RECONCILE_LOCK = "reconcile:lock"  # one scheduled reconcile run per interval, across workers
# The operator's console (receiver/console/): indexes newest-first listings page through,
# sorted sets scored by when the thing was received or created.
EVENTS_INDEX = "events:index"  # every stored event key, by received time (the accept script)
EVENTS_FAILED = "events:failed"  # event keys now `failed`, by received time
NOTICES_INDEX = "notices:index"  # every notice record key, by creation time
AUDIT_LOG = "audit:log"  # the console's actions, JSON members scored by when
# Prefix of the failed console sign-in counters (console/signin_limits.py): the `limits`
# library appends `:LIMITER/<address|user>/<digest>/<amount>/<multiples>/<unit>` (a list of
# try times, expiring with its window).
CONSOLE_SIGNIN = "console:signin"
# The format of everything below, as a release wrote it (string: an integer; store/format.py).
DATA_FORMAT = "data:format"
WORKERS_SEEN = "workers:seen"  # worker name -> until when its latest heartbeat counts it alive
# A suppression key no address hashes to: what the send claim checks when there is no address.
NO_ADDRESS = "suppressed:none"


def metric(family: str) -> str:
    """A metric family's values, shared by every process (hash; store/metrics.py)."""
    return f"metrics:{family}"


def scheduler_lock(queue: str) -> str:
    """Which worker moves the due scheduled jobs of `queue` onto it (string: its mover name)."""
    return f"scheduler:lock:{queue}"


def event(source: str, event_id: str) -> str:
    """An event record (hash); also its de-duplication key."""
    return f"event:{source}:{event_id}"


def notice(record_id: str) -> str:
    """A notice record (hash)."""
    return f"notice:{record_id}"


def awaiting(contractor_id: str) -> str:
    """Ids of the notice records waiting for this contractor's contact (set)."""
    return f"awaiting:{contractor_id}"


def contractor(contractor_id: str) -> str:
    """A contractor's contact as events told it (hash)."""
    return f"contractor:{contractor_id}"


def contractor_api(contractor_id: str) -> str:
    """1099Policy's API copy of a contractor's contact (JSON string)."""
    return f"contractor_api:{contractor_id}"


def job(job_id: str) -> str:
    """What events told us about a 1099Policy job: name, PO contact, payer mode (hash)."""
    return f"job:{job_id}"


def ledger(invoice_id: str) -> str:
    """The premium ledger entry of an invoice (JSON string). Entries of the previous release,
    `ledger:<contractor>:<job>`, are never read again and expire with their TTL."""
    return f"ledger:invoice:{invoice_id}"


def reprices(invoice_id: str, burst_id: str) -> str:
    """The re-prices a burst of an invoice coalesced (hash: `<source>:<event id>` -> JSON of
    the amount before and after and when it was processed); `burst_id` is its first event's."""
    return f"reprices:{invoice_id}@{burst_id}"


def invoice_premium(invoice_id: str) -> str:
    """An invoice's current premium (cents)."""
    return f"invoice_premium:{invoice_id}"


def settled(kind: str, object_id: str) -> str:
    """A fact that makes reminders moot: invoice paid, assignment charged or cancelled..."""
    return f"settled:{kind}:{object_id}"


def work_cancelled(job: str, contractor: str) -> str:
    """When one contractor's assignment on one job was last cancelled (a settlement)."""
    return settled("work_cancelled", f"{job}/{contractor}")


def suppressed(address_hash: str) -> str:
    """A suppressed address, by the SHA-256 of the address (hash)."""
    return f"suppressed:{address_hash}"


def sendgrid_event_id(digest: str) -> str:
    """De-duplication of a SendGrid event by its `sg_event_id` (string)."""
    return f"sgevent:id:{digest}"


def sendgrid_event_fingerprint(digest: str) -> str:
    """De-duplication of a SendGrid event by its content (string)."""
    return f"sgevent:fp:{digest}"


def coverage_doc(contractor_id: str) -> str:
    """A contractor's coverage document (JSON string)."""
    return f"coverage:doc:{contractor_id}"


def coverage_owner(ref: str) -> str:
    """The contractor a coverage object (quote, policy, assignment...) belongs to (string)."""
    return f"coverage:owner:{ref}"


def coverage_parked(ref: str) -> str:
    """Coverage events waiting for their contractor to be known (hash event id -> event)."""
    return f"coverage:parked:{ref}"


def payments(contractor_id: str) -> str:
    """A contractor's charges for their coverage (hash charge -> JSON), for the coverage page."""
    return f"payments:{contractor_id}"


def erased(contractor_id: str) -> str:
    """That a contractor was forgotten on request: when, and how much (hash; no TTL)."""
    return f"erased:{contractor_id}"


def events_of_contractor(contractor_id: str) -> str:
    """The keys of the events that named a contractor, by received time (sorted set)."""
    return f"events:contractor:{contractor_id}"


def notices_of_contractor(contractor_id: str) -> str:
    """The keys of the notice records about a contractor, by creation time (sorted set)."""
    return f"notices:contractor:{contractor_id}"


def event_notices(source: str, event_id: str) -> str:
    """The notice record ids an event decided on (set): its outcome in the console."""
    return f"event_notices:{source}:{event_id}"


def bulk_replay(replay_id: str) -> str:
    """An operator's bulk replay: its filter, cap and progress (hash)."""
    return f"replay:{replay_id}"
