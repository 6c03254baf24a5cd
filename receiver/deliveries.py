"""Old home of the notice send task, kept so jobs queued before the move still run.

Send jobs queued or scheduled (reminders, days ahead) by the previous release name
`receiver.deliveries.send_notice_job`. Remove after one release (the new path is
`receiver.pipeline.tasks.send_notice`).
"""

from __future__ import annotations

from .pipeline.tasks import send_notice as send_notice_job

__all__ = ["send_notice_job"]
