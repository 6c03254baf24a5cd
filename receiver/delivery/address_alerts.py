"""One alert to the organization rep per suppressed contractor address, so a person fixes it.

Queued when a contractor's address goes on the suppression list (a bounce, drop or spam report
for one of their notices) and again whenever a notice to it is held back; the alert is an
ordinary notice record (`address_suppressed_rep`) whose identity is (contractor, hash of the
address, rep), so however often it is queued the rep gets it once. A corrected address that
fails too is a new address, hence a new alert.

The rep is the job's PO contact (`custom_metadata.po_contact_email`, as remembered from the
events that embedded the job), else ORG_REP_EMAILS: `Jobs.reps`, as for every other rep
notice. Alerts go to reps only; a rep address on the list gets its notices held back with no
further alert (there is nobody else to tell, and it would loop).

The bad address is in the email body (the rep needs it) but never in SendGrid's categories or
custom args, which only carry the notice id and the opaque record id.
"""

from __future__ import annotations

import json

from ..notices.contacts import Contact
from ..notices.jobs import Jobs
from .records import NoticeRecords
from .suppressions import Suppressions, address_hash

ALERT_NOTICE = "address_suppressed_rep"


class AddressAlerts:
    """Creates the rep's alert records for contractor notices held back by the list."""

    def __init__(
        self,
        records: NoticeRecords,
        suppressions: Suppressions,
        jobs: Jobs,
        org_reps: tuple[str, ...],
    ) -> None:
        self.records = records
        self.suppressions = suppressions
        self.jobs = jobs
        self.org_reps = org_reps

    def alert(self, rid: str) -> int:
        """Create the alert record(s) for contractor notice `rid`; return how many were new."""
        rec = self.records.get(rid)
        if not rec.get("recipient", "").startswith("contractor:") or not rec.get("to_email"):
            return 0
        entry = self.suppressions.get(rec["to_email"])
        if entry is None:  # lifted since the alert was queued
            return 0
        contractor_id = rec["recipient"].partition(":")[2]
        stored = json.loads(rec.get("context") or "{}")
        job = stored.get("job") if isinstance(stored.get("job"), dict) else {}
        job_id = job.get("id") or ""
        context = {
            "contractor": {
                "id": contractor_id,
                "first_name": rec.get("first_name", ""),
                "last_name": rec.get("last_name", ""),
            },
            "job": {"id": job_id, "name": job.get("name"), "entity": job.get("entity")},
            "coverage_url": None,
            "address": rec["to_email"],
            "reason": entry.reason,
            "suppressed_at": entry.at,
        }
        cause = f"address:{contractor_id}:{address_hash(rec['to_email'])[:16]}"
        created = 0
        for rep in self.jobs.reps(job_id, self.org_reps) or [""]:
            created += self.records.create(
                ALERT_NOTICE, cause, f"rep:{rep.lower() or 'none'}", Contact(email=rep), context
            )
        return created
