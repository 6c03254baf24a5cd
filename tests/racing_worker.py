"""A real worker process whose RQ teardown meets the pub/sub thread in the order a busy machine
often gives it, for the shutdown tests (tests/test_worker.py).

RQ's teardown (`Worker.unsubscribe`) sends UNSUBSCRIBE on the worker's pub/sub connection, then
calls `PubSubWorkerThread.stop()`. When the pub/sub thread reads the unsubscribe reply before
`stop()` clears its running flag (likely on a loaded machine, rare on an idle one), it goes round
its loop once more and waits in `get_message(timeout=60)` with nothing subscribed. redis-py 8.2's
`stop()` joins the thread, so the worker waited those 60 s before exiting.

Race injection, not mocking: the worker is `worker.main()` itself; redis-py's `stop()` is wrapped
to let the pub/sub thread handle the unsubscribe reply first, so that order is certain here.
    python tests/racing_worker.py [worker.py's arguments]
"""

from __future__ import annotations

import time
from typing import Any

from redis.client import PubSubWorkerThread

REPLY_WAIT_SECONDS = 5.0


def main() -> None:
    original = PubSubWorkerThread.stop

    def stop_after_the_reply(self: PubSubWorkerThread, *args: Any, **kwargs: Any) -> None:
        deadline = time.monotonic() + REPLY_WAIT_SECONDS
        while self.pubsub.subscribed and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # the thread is back in its loop, in get_message()
        original(self, *args, **kwargs)

    PubSubWorkerThread.stop = stop_after_the_reply  # type: ignore[method-assign]
    from receiver.processes import worker

    worker.main()


if __name__ == "__main__":
    main()
