"""Bench-only wrapper: the SendGrid test server plus a side port that says when each mail came.

The end-to-end latency benchmark needs, per notice record, the time the SendGrid stand-in
accepted its mail. `tests/sendgrid_server.SendGridServer` records that (`accepted[i]["time"]`,
taken once the request is read and validated) but only shows counters over HTTP, so this
wrapper runs the very same server class in this process and serves, on `--control-port`,

    GET /times -> {"stats": {...}, "mails": [{"record": <custom_args.notice_record>,
                                              "to": <first recipient>, "time": <unix s>}]}

Run: `python bench/sg_server.py --port P --control-port C` (from the repository root).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sendgrid_server import SendGridServer  # noqa: E402


def _record_of(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    args = body.get("custom_args") or {}
    for pers in body.get("personalizations") or []:
        args = {**args, **(pers.get("custom_args") or {})}
    return str(args.get("notice_record", ""))


def _to_of(body: Any) -> str:
    try:
        return str(body["personalizations"][0]["to"][0]["email"])
    except (KeyError, IndexError, TypeError):
        return ""


def mail_times(server: SendGridServer) -> dict[str, Any]:
    mails = [
        {"record": _record_of(a["body"]), "to": _to_of(a["body"]), "time": a["time"]}
        for a in server.accepted
    ]
    return {"stats": server.stats(), "mails": mails}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--max-records", type=int, default=20_000)
    args = parser.parse_args(argv)

    server = SendGridServer("127.0.0.1", args.port, max_records=args.max_records).start()

    class Control(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if self.path != "/times":
                self.send_error(404)
                return
            payload = json.dumps(mail_times(server)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *a: Any) -> None:
            pass

    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(server.url, flush=True)
    try:
        while not done.wait(0.1):
            pass
    finally:
        control.shutdown()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
