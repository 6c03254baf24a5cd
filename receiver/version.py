"""The release's version, read back from the installed package's metadata (pyproject.toml's
`version` is the one source)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("ten99-receiver")
except PackageNotFoundError:  # imported from a folder that was never installed
    VERSION = "0+unknown"
