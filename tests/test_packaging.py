"""The project's own packages are the ones imported, and start-up stays light."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_top_level_packages_come_from_this_checkout():
    import cli
    import indexes
    import scanner

    for mod in (scanner, indexes, cli):
        assert mod.__file__ is not None
        assert REPO in __import__("pathlib").Path(mod.__file__).resolve().parents, mod.__file__


def test_cli_import_loads_no_model_faiss_or_numpy():
    code = (
        "import sys, cli.main; "
        "print(','.join(m for m in ('face_recognition', 'dlib', 'faiss', 'numpy', 'PIL', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_scan_and_exit_codes():
    out = subprocess.run([sys.executable, "-m", "cli.main", "--help"], capture_output=True, text=True, check=True)
    assert "scan" in out.stdout
    assert "Exit codes" in out.stdout


def test_import_layers_respected():
    """cli -> scanner -> indexes, never upwards (import-linter contract in pyproject.toml)."""
    lint = REPO / ".venv" / "bin" / "lint-imports"
    exe = str(lint) if lint.exists() else "lint-imports"
    out = subprocess.run([exe, "--config", str(REPO / "pyproject.toml")], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
