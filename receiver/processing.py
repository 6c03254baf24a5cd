"""Old home of the event task, kept so jobs queued before the move still run.

Event jobs queued by the previous release name `receiver.processing.process_event`; RQ imports
that path when it runs them. Remove after one release (the new path is
`receiver.pipeline.tasks.process_event`).
"""

from __future__ import annotations

from .pipeline.tasks import process_event

__all__ = ["process_event"]
