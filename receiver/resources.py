"""Files the package ships beside its code: the templates.

`templates/` at the top of the repository is the package `receiver.templates` (pyproject.toml
maps it), so a checkout's editable install and the built wheel find the same files through the
import system, whatever the working directory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def template_root() -> Path:
    """The folder holding every kind of template (`console/…`, `coverage/…`, `emails/…`)."""
    root = files("receiver.templates")
    if not isinstance(root, Path):  # a zipped install; the wheel is installed unzipped
        raise FileNotFoundError("receiver.templates is not on the file system")
    return root


def templates(kind: str) -> Path:
    """The folder of one kind of template: `emails`, `console` or `coverage`."""
    return template_root() / kind
