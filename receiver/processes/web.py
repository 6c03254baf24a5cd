"""`receiver-web`: gunicorn serving `receiver:create_app()` with this package's settings.

Run from any folder: the settings are the module `receiver.processes.gunicorn_settings`, not a
file in the working directory. Arguments after `receiver-web` go to gunicorn as they are (for
example `receiver-web --bind 127.0.0.1:9000`), and GUNICORN_CMD_ARGS overrides the settings.
"""

from __future__ import annotations

import sys

SETTINGS = "python:receiver.processes.gunicorn_settings"
APP = "receiver:create_app()"


def argv(extra: list[str]) -> list[str]:
    """gunicorn's command line: our settings, then the caller's arguments, then the app."""
    return ["receiver-web", "-c", SETTINGS, *extra, APP]


def main() -> None:
    """Run gunicorn in this process (its master), until it is stopped."""
    from gunicorn.app.wsgiapp import run

    sys.argv = argv(sys.argv[1:])
    run()
