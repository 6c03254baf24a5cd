"""Structured logs: one JSON object per line, or the same facts as a readable line.

Every line the service writes about its work comes from `record(logger, what, **fields)`: a
fixed message (`webhook`, `event processed`, `notice sent`, `sweep`, ...) and fields that are
ids, types, outcomes and durations. Never a body, a secret, an email address or a name: the
fields a caller may pass are listed in FIELDS, and anything else is refused when the line is
written (a test runs the whole pipeline and searches the output for the test people's
addresses and names).

`configure("json")` is what production wants (a log shipper parses each line);
`configure("text", "debug")` is what `make run` uses, so a newcomer sees each delivery, event
and email as it happens: `15:04:05 notice sent  record_id=nt_1 notice=payment_confirmation`.

The line per accepted webhook is at DEBUG: it costs about 30 us of a receive's ~370 us of CPU
(docs/observability.md), and the worker's `event processed` line (INFO) names every accepted event
anyway. Refusals are WARNING, so they are always there.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The only fields a log line may carry: ids, kinds, outcomes, counts and durations.
FIELDS = frozenset(
    {
        "source",
        "event_id",
        "type",
        "status",
        "outcome",
        "reason",
        "notice",
        "record_id",
        "attempts",
        "duration_ms",
        "events",
        "notices",
        "error",
        "contractor_id",
        "quote_id",
        "http_status",
        "processes",
        "exit_code",
        "data_format",
        "jobs",
        "at",  # where a failure was raised: `receiver/notices/rules.py:97`, never a message
        "next_try_in",  # seconds until RQ runs a failed task again
        "task",
        "problem",  # which signature problem a refusal had (errors.SIGNATURE_PROBLEMS)
        "path",  # the endpoint of a refusal that is not a webhook's
        "job_id",
        "location",
    }
)
_KEY = "receiver_fields"
# What a text line must not carry raw: control characters (a newline in an id would forge a
# line of its own) and the Unicode line breaks some terminals and viewers honour.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TRACEBACK = "Traceback (most recent call last)"
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')
_RQ_JOB = re.compile(r"job (\S+): exception raised")


def _escape(value: Any) -> str:
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))


def record(logger: logging.Logger, what: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """Log `what` with `fields` (names from FIELDS; values ids, numbers or short codes)."""
    if not logger.isEnabledFor(level):
        return  # first: the webhook's DEBUG line is on the hot path and usually off
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"not a log field: {', '.join(sorted(unknown))}")
    logger.log(level, what, extra={_KEY: fields})


_PACKAGE = Path(__file__).resolve().parent


def where(exc: BaseException) -> str:
    """Where `exc` was raised, as `path:line`: the innermost frame of this package (the code of
    ours that failed, relative to the package's folder), else the innermost frame at all
    (`file.py:line` of a library). Names a place, never a value."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    for frame in reversed(frames):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(_PACKAGE):
            return f"{path.relative_to(_PACKAGE.parent)}:{frame.lineno}"
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "msg": ..., <fields>}` on one line."""

    def format(self, entry: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(entry.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": entry.levelname.lower(),
            "logger": entry.name,
            "msg": entry.getMessage(),
        }
        out.update(getattr(entry, _KEY, {}))
        if entry.exc_info and entry.exc_info[0] is not None:
            # The class only: an exception's message may quote a payload.
            out["exception"] = entry.exc_info[0].__name__
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """`15:04:05 notice sent  notice=... record_id=...`: the same facts, for a terminal."""

    def format(self, entry: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(entry.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={_escape(v)}" for k, v in getattr(entry, _KEY, {}).items())
        line = f"{when} {_escape(entry.getMessage()):<16} {fields}".rstrip()
        if entry.exc_info and entry.exc_info[0] is not None:
            line += f" exception={entry.exc_info[0].__name__}"
        return line


class RQFailureSummary(logging.Filter):
    """RQ's own line for a failed job holds the whole traceback, exception message included
    (which may quote a payload, an address, a name). Such a line from RQ's loggers is
    rewritten as `job failed` with the job id, the exception's class and where it was raised
    (file:line in function), and written by our formatter like any other line."""

    def filter(self, entry: logging.LogRecord) -> bool:
        if not entry.name.startswith("rq"):
            return True
        message = entry.getMessage()
        if _TRACEBACK not in message:
            return True
        last = message.rstrip().splitlines()[-1]
        error = last.split(":", 1)[0].strip() if last and not last[0].isspace() else ""
        frames = _FRAME.findall(message)
        fields: dict[str, Any] = {"error": error.rsplit(".", 1)[-1] or "unknown"}
        if frames:
            path, line, function = frames[-1]
            where = path[path.rfind("receiver/") :] if "receiver/" in path else path.rsplit("/")[-1]
            fields["location"] = f"{where}:{line} in {function}"
        job = _RQ_JOB.search(message)
        if job:
            fields["job_id"] = job.group(1)
        entry.msg, entry.args = "job failed", ()
        setattr(entry, _KEY, fields)
        return True


def configure(fmt: str, level: str = "info") -> None:
    """Send log lines of `level` ("debug", "info", "warning") and up to stderr in `fmt`
    ("json" or "text"), replacing other handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RQFailureSummary())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # DEBUG is ours only: RQ's debug lines (every BLPOP, and the enqueue commands the
    # create-if-absent scripts record but may never apply) would drown the service's own.
    root.setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
    logging.getLogger("receiver").setLevel(level.upper())
    # The HTTP client logs the API key and the payload at DEBUG; never let it.
    logging.getLogger("python_http_client").setLevel(logging.WARNING)
