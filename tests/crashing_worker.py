"""A real worker process that kills itself (SIGKILL) at a chosen point, for crash tests.

Crash injection, not mocking: the worker is `worker.main()` itself; one method is wrapped so the
process dies exactly there, as it would on an OOM kill or a lost host.
    python tests/crashing_worker.py render   -> dies while rendering, before any send
    python tests/crashing_worker.py unsent   -> dies inside the send, claimed, before the request
                                                reaches SendGrid
    python tests/crashing_worker.py sent     -> dies right after SendGrid accepted the mail
"""

from __future__ import annotations

import os
import signal
import sys

from receiver.delivery import emails, mailer, records


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    point = sys.argv.pop(1)
    if point == "render":
        emails.EmailRenderer.render = lambda self, notice, context: _die()  # type: ignore
    elif point == "unsent":
        mailer.SendGridMailer.send = lambda self, message: _die()  # type: ignore
    elif point == "sent":
        original = records.NoticeRecords.finish

        def finish_then_die(self, rid, state, **fields):  # type: ignore[no-untyped-def]
            if state == "accepted":
                _die()
            return original(self, rid, state, **fields)

        records.NoticeRecords.finish = finish_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown crash point {point}")
    from receiver.processes import worker

    worker.main()


if __name__ == "__main__":
    main()
