"""Who a contractor is (name, email, time zone) when an event names them only by id.

Sources, best first:

1. What events told us: `contractor.updated` from the platform (and contractor objects
   embedded in other events) are stored with `remember()` in the hash `contractor:<id>`.
   Newest wins per field, by the event's `created`, compared inside one Lua script, so two
   workers applying events in any order end with the newest value of every field; an event
   that leaves a field empty keeps the stored one (1099Policy's objects have no time zone and
   must not erase the platform's). Only the platform sends a time zone.
2. 1099Policy's API, `GET /api/v1/contractors/{id}` through the official `ten99policy` client,
   when an API key is configured. The copy is cached under a separate key,
   `contractor_api:<id>`, so it can never overwrite or outrank an event-sourced contact;
   storing an event-sourced contact drops it. A 404 (or a copy without an email) is cached
   for `NEGATIVE_SECONDS` only, so a burst of events for an unknown contractor costs one call
   but a contractor created later is found soon.
3. Nothing: `lookup()` returns None and the notice waits for a contact.

`lookup()` never raises for an API problem (network, timeout, 4xx, 5xx, unparseable reply):
it logs the error class, status and contractor id (never the message or body, which may hold
personal data) and returns None. The caller's job retries decide when to ask again, which is
why the client's own retries stay off. Redis errors do propagate: the job should fail and retry.

The API client's process-wide settings are made safe by notices/ten99policy_client.py.
Responses are `Ten99PolicyObject`s (dicts); fields are read defensively, because the client
also turns string values that look like Python literals into dicts or lists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import ten99policy
from email_validator import EmailNotValidError, validate_email
from redis import Redis

from ..store import keys
from .ten99policy_client import configure_ten99policy, environment_for

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.1099policy.com"
NEGATIVE_SECONDS = 300

_REMEMBER = """
-- Per field, the value from the newest event that carried one. Each field keeps the time it
-- came from in `<name>_at`; storing anything drops the API copy.
-- Every event that names the contractor restarts the contact's retention (ARGV[3] seconds).
-- KEYS[1]: contractor:<id>, KEYS[2]: contractor_api:<id>
-- ARGV[1]: the event's created ('' = unknown, older than any time; equal times replace),
-- ARGV[2]: contractor id, ARGV[3]: retention seconds ('' = keep);
-- then field/value pairs, '' meaning "not in this event"
local t = ARGV[1]
local changed = 0
for i = 4, #ARGV, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  if value ~= '' then
    local at = redis.call('HGET', KEYS[1], name .. '_at')
    if not at or at == '' or (t ~= '' and tonumber(t) >= tonumber(at)) then
      redis.call('HSET', KEYS[1], name, value, name .. '_at', t)
      changed = 1
    end
  end
end
if changed == 1 then
  redis.call('HSET', KEYS[1], 'id', ARGV[2])
  redis.call('DEL', KEYS[2])
end
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return changed
"""
FIELDS = ("email", "first_name", "last_name", "timezone", "withhold_premium")


@dataclass(frozen=True, kw_only=True)
class Contact:
    """A person we write to: a contractor (with what events told us) or a rep (an address).

    An empty email means "not known yet": a contractor's notice then waits for one.
    """

    email: str = ""
    first_name: str = ""
    last_name: str = ""
    timezone: str | None = None  # IANA name; only the platform sends one
    id: str = ""  # the contractor id; "" for a rep
    withhold_premium: bool | None = None  # the contractor-level payer setting, when known

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def address_problem(email: str) -> str | None:
    """Why `email` cannot be a recipient (email-validator, syntax only, no DNS), or None.
    A comma would make a second recipient of the To: header, a CR or LF a header of its own."""
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"invalid email address: {exc}"
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def contact_from(obj: Mapping[str, Any]) -> Contact:
    """A Contact from an embedded contractor object or `contractor.updated` data.

    Anything that is not a string (null, a number, a dict) reads as unknown rather than as
    its repr, so a malformed field can never become an email address or a name.
    """
    withhold = obj.get("withhold_premium")
    return Contact(
        id=_text(obj.get("id")),
        email=_text(obj.get("email")),
        first_name=_text(obj.get("first_name")),
        last_name=_text(obj.get("last_name")),
        timezone=_text(obj.get("timezone")) or None,
        withhold_premium=withhold if isinstance(withhold, bool) else None,
    )


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Contacts:
    """Contractor contacts: stored from events, else fetched from 1099Policy and cached."""

    def __init__(
        self,
        redis: Redis,
        *,
        api_key: str | None,
        api_base: str,
        timeout: float,
        cache_seconds: int = 86400,
        environment: str | None = None,
        retention_seconds: int | None = None,
    ) -> None:
        self.redis = redis
        # CONTRACTOR_RETENTION_DAYS: a contact lives this long after the contractor's last event.
        self.retention = retention_seconds
        self.api_key = api_key or None
        self.cache_seconds = cache_seconds
        self._remember = redis.register_script(_REMEMBER)
        configure_ten99policy(api_base, timeout, environment or environment_for(self.api_key))

    def remember(self, contact: Contact, created: int | None) -> bool:
        """Store what an event says about a contractor, newest wins; True if anything stored.

        Newest wins per field: `created` (the event's Unix time; None counts as older than any
        time, an equal time replaces) is compared with the time each stored field came from,
        and a field the event leaves empty keeps its stored value. So an embedded contractor
        object from 1099Policy (never a time zone) does not erase the time zone a platform
        `contractor.updated` gave, in whichever order the two are applied.
        """
        if not contact.id:
            raise ValueError("a contractor contact needs an id")
        if isinstance(created, bool):
            raise TypeError("created must be Unix seconds or None")
        withhold = "" if contact.withhold_premium is None else str(int(contact.withhold_premium))
        values = (
            contact.email,
            contact.first_name,
            contact.last_name,
            contact.timezone or "",
            withhold,
        )
        args: list[str] = [
            "" if created is None else str(int(created)),
            contact.id,
            "" if self.retention is None else str(self.retention),
        ]
        for name, value in zip(FIELDS, values, strict=True):
            args += [name, value]
        stored = self._remember(
            keys=[keys.contractor(contact.id), keys.contractor_api(contact.id)], args=args
        )
        return bool(stored)

    def stored(self, contractor_id: str) -> Contact | None:
        """The contact stored from events, or None."""
        raw = self.redis.hgetall(keys.contractor(contractor_id))
        if not raw:
            return None
        data = {_decode(k): _decode(v) for k, v in raw.items()}
        withhold = data.get("withhold_premium", "")
        return Contact(
            id=contractor_id,
            email=data.get("email", ""),
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            timezone=data.get("timezone") or None,
            withhold_premium=None if withhold == "" else withhold == "1",
        )

    def lookup(self, contractor_id: str) -> Contact | None:
        """The best-known contact: stored from events, else 1099Policy's (cached), else None.

        A stored contact without an email (an event that carried only a name or a time zone)
        is completed from the API copy, its own fields first.
        """
        if not contractor_id:
            return None
        stored = self.stored(contractor_id)
        if (stored is not None and stored.email) or self.api_key is None:
            return stored
        fetched = self._api_copy(contractor_id)
        # An event may have been stored while we waited on the API; it wins.
        stored = self.stored(contractor_id)
        if stored is None or fetched is None:
            return stored or fetched
        return Contact(
            id=contractor_id,
            email=stored.email or fetched.email,
            first_name=stored.first_name or fetched.first_name,
            last_name=stored.last_name or fetched.last_name,
            timezone=stored.timezone or fetched.timezone,
            withhold_premium=(
                fetched.withhold_premium
                if stored.withhold_premium is None
                else stored.withhold_premium
            ),
        )

    def _api_copy(self, contractor_id: str) -> Contact | None:
        """1099Policy's copy: from the cache, else fetched and cached; None when unknown."""
        cache_key = keys.contractor_api(contractor_id)
        cached = self.redis.get(cache_key)
        if cached is not None:
            data = json.loads(cached)
            return Contact(**data["person"]) if data.get("person") else None
        contact, found = self._fetch(contractor_id)
        if contact is None and not found:
            self.redis.set(cache_key, json.dumps({"person": None}), ex=NEGATIVE_SECONDS)
        elif contact is not None:
            ttl = self.cache_seconds if contact.email else NEGATIVE_SECONDS
            self.redis.set(cache_key, json.dumps({"person": asdict(contact)}), ex=ttl)
        return contact

    def _fetch(self, contractor_id: str) -> tuple[Contact | None, bool]:
        """Ask 1099Policy: (contact, found). (None, True) means "unknown now, do not cache"."""
        try:
            obj = ten99policy.Contractors.retrieve(contractor_id, api_key=self.api_key)
            data = {k: obj.get(k) for k in ("email", "first_name", "last_name")}
            withhold = obj.get("withhold_premium")
        except Exception as exc:  # any client failure, even a malformed reply: unknown now
            status = getattr(exc, "http_status", None)
            # The class, status and id only: messages and bodies may carry personal data.
            log.warning(
                "1099Policy contractor lookup failed: %s (HTTP %s) for %s",
                type(exc).__name__,
                status,
                contractor_id,
            )
            return None, status != 404
        contact = contact_from({**data, "id": contractor_id, "withhold_premium": withhold})
        return contact, True
