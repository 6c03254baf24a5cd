"""What we know about jobs from the events that embed them: name, entity, rep address, payer mode.

Events often name a job only by id; an earlier event (the platform's `assignment.created`, an
invoice) may have embedded the whole job. Remembering it lets later notices address the job's
rep (`custom_metadata.po_contact_email`) and know whether the organization remits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis import Redis

from ..store import keys
from ..store.connection import text

_REMEMBER = """
-- Newest wins: an event older than the one that last described the job changes nothing, so
-- a late delivery cannot send rep notices back to a former PO contact.
-- KEYS[1]: job:<id>
-- ARGV[1]: the event's created (-1: unknown, oldest), ARGV[2]: TTL; then field/value pairs
local stored = tonumber(redis.call('HGET', KEYS[1], '_created') or '-2')
if tonumber(ARGV[1]) < stored then return 0 end
redis.call('HSET', KEYS[1], '_created', ARGV[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class Jobs:
    def __init__(self, redis: Redis, retention_seconds: int) -> None:
        self.redis = redis
        self.ttl = retention_seconds
        self._remember = redis.register_script(_REMEMBER)

    def remember(self, job: Mapping[str, Any], created: int | None = None) -> None:
        """Store the useful fields of an embedded job object (fields absent are left alone),
        unless a newer event (by `created`; None counts as oldest) already stored the job."""
        job_id = job.get("id")
        if not isinstance(job_id, str) or not job_id:
            return
        fields: dict[str, str] = {}
        if isinstance(job.get("name"), str):
            fields["name"] = job["name"]
        # `entity` (whom the work is for) is an `en_` id, or the entity itself when expanded;
        # only a name is worth showing people.
        entity = job.get("entity")
        if isinstance(entity, dict) and isinstance(entity.get("name"), str):
            fields["entity_name"] = entity["name"].strip()
        meta = job.get("custom_metadata")
        if isinstance(meta, dict) and isinstance(meta.get("po_contact_email"), str):
            fields["po_contact_email"] = meta["po_contact_email"].strip()
        if isinstance(job.get("withhold_premium"), bool):
            fields["withhold_premium"] = "1" if job["withhold_premium"] else "0"
        if fields:
            args: list[Any] = [-1 if created is None else created, self.ttl]
            for name, value in fields.items():
                args += [name, value]
            self._remember(keys=[keys.job(job_id)], args=args)

    def reps(self, job_id: str, org_reps: tuple[str, ...]) -> list[str]:
        """Who hears about a job: its PO contact, else the organization's rep addresses."""
        return reps_of(self.get(job_id), org_reps)

    def get(self, job_id: str) -> dict[str, str]:
        if not job_id:
            return {}
        raw = self.redis.hgetall(keys.job(job_id))
        return {text(k): text(v) for k, v in raw.items()}


def reps_of(job: dict[str, str], org_reps: tuple[str, ...]) -> list[str]:
    """Who hears about a job already read: its PO contact, else the organization's reps."""
    po = job.get("po_contact_email", "").strip()
    return [po] if "@" in po else list(org_reps)
