"""scripts/import_cycles.py: finds circles through relative and in-function imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "import_cycles.py"


def run(package: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, source in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


# pkg.a -> pkg.sub.c -> pkg.b -> pkg.a; the step from c to b is an import inside a function.
CIRCLE = {
    "a.py": "from .sub import c\n",
    "sub/__init__.py": "",
    "sub/c.py": "def late():\n    from ..b import helper\n\n    return helper\n",
    "b.py": "import json\n\nfrom . import a\n\n\ndef helper():\n    return json, a\n",
    "d.py": "from pkg.a import c\n",  # imports into the circle, is not part of it
}


def test_a_circle_is_printed_and_fails(tmp_path: Path) -> None:
    result = run(make_package(tmp_path, CIRCLE))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "import circle among 3 modules: pkg.a, pkg.b, pkg.sub.c" in result.stdout
    assert "pkg.a (line 1) -> pkg.sub.c (line 2) -> pkg.b (line 3) -> pkg.a" in result.stdout
    assert "pkg.d" not in result.stdout


def test_an_import_inside_a_function_closes_a_circle(tmp_path: Path) -> None:
    without_late_import = {**CIRCLE, "sub/c.py": "def late():\n    return None\n"}
    assert run(make_package(tmp_path / "without", without_late_import)).returncode == 0
    assert run(make_package(tmp_path / "with", CIRCLE)).returncode == 1


def test_a_package_without_circles_passes(tmp_path: Path) -> None:
    package = make_package(
        tmp_path,
        {
            "__init__.py": "from .a import run\n",
            "a.py": "from .sub import c\nfrom . import b\n\n\ndef run():\n    import pkg.b\n",
            "b.py": "from .sub.c import VALUE\n",
            "sub/__init__.py": "from . import c\n",
            "sub/c.py": "import os\n\nVALUE = os.sep\n",
        },
    )
    result = run(package)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "no import circles among 5 modules"


def test_the_receiver_package_has_no_circles() -> None:
    result = run(ROOT / "receiver")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no import circles among ")
