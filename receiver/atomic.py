"""Create-if-absent in one Redis round trip: record commands, apply them only if a key is new.

Used wherever "store this and queue its job, exactly once" must hold under races and crashes:
the inbox (one event, one job) and notice records (one record, one send job). The commands
are recorded on an unexecuted MULTI pipeline, so RQ's own enqueue code writes the job exactly
as RQ expects, and one Lua call checks the key and replays them atomically.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.client import Pipeline

# ARGV is a flat list of commands, each prefixed by its length: n, cmd, arg1..argn-1, n, ...
_APPLY_IF_ABSENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
  return 0
end
local i = 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""


class CreateIfAbsent:
    """A reusable script object bound to one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_APPLY_IF_ABSENT)

    def recorder(self) -> Pipeline:
        """A pipeline to record commands on; it is never executed itself."""
        pipe = self.redis.pipeline()
        pipe.multi()  # RQ insists on an explicit transaction when handed a pipeline.
        return pipe

    def apply(self, key: str, recorder: Pipeline, count_field: str = "") -> bool:
        """Apply the recorded commands if `key` does not exist; else bump `count_field`.

        Returns True when the commands were applied (the key was new).
        """
        argv: list[Any] = [count_field]
        for args, _options in recorder.command_stack:
            argv.append(len(args))
            argv.extend(args)
        return bool(self._script(keys=[key], args=argv))
