"""The layers of receiver/ (pyproject.toml's [tool.importlinter], `make lint`): every part has
its layer, an upward import is refused wherever it is written, and so is a circle inside one
layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the receiver package under `where`, with the project's contracts."""
    env = {**os.environ, "PYTHONPATH": str(where)}  # before the editable install of ROOT
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_receiver(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "receiver", tmp_path / "receiver", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path / "receiver"


def test_every_part_of_receiver_has_its_layer() -> None:
    """A module or package not named in a layer would be free to import anything."""
    named = [
        name.strip()
        for layer in contracts()["layers"]["layers"]  # type: ignore[attr-defined]
        for name in layer.split("|")
    ]
    parts = sorted(
        path.stem if path.suffix == ".py" else path.name
        for path in (ROOT / "receiver").iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").is_file()
    )
    assert sorted(named) == parts


def test_the_receiver_package_keeps_its_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_inside_a_function_is_refused(tmp_path: Path) -> None:
    receiver = copy_of_receiver(tmp_path)
    with (receiver / "config.py").open("a") as config:
        config.write("\n\ndef _late() -> object:\n    from .ingest import verify\n\n")
        config.write("    return verify\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "receiver.config is not allowed to import receiver.ingest" in result.stdout


def test_a_circle_inside_one_package_is_refused(tmp_path: Path) -> None:
    """Two modules of one layer may import each other as far as the layers go: the second
    contract refuses it."""
    receiver = copy_of_receiver(tmp_path)
    (receiver / "notices" / "one.py").write_text("from . import two\n")
    (receiver / "notices" / "two.py").write_text("from . import one\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "1 kept, 1 broken" in result.stdout  # the layers hold; the circle does not
    assert "No cycles are allowed in receiver.notices." in result.stdout
