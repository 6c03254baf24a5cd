"""Old home of the rep address-alert task, kept so jobs queued before the move still run.

Alert jobs queued by the previous release name `receiver.address_alerts.alert_job`. Remove
after one release (the new path is `receiver.pipeline.tasks.alert_rep`).
"""

from __future__ import annotations

from .pipeline.tasks import alert_rep as alert_job

__all__ = ["alert_job"]
