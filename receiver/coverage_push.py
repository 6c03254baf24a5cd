"""Old home of the coverage push task, kept so jobs queued before the move still run.

Push jobs (retried for hours) queued by the previous release name
`receiver.coverage_push.deliver`. Remove after one release (the new path is
`receiver.pipeline.tasks.push_coverage`).
"""

from __future__ import annotations

from .pipeline.tasks import push_coverage as deliver

__all__ = ["deliver"]
