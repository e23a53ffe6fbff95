"""Lint in CI: pyflakes rules (ruff ``F``) over the whole tree, so an undefined name (a
``TransientError`` raised without being imported once turned a retryable reply into an internal
error) or an unused import cannot land."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = ("judgeflow", "tasks", "flows", "benchmarks", "tests", "infra")


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)


def test_ruff_is_installed() -> None:
    version = _ruff("--version")
    assert version.returncode == 0, f"ruff is missing: install the dev extra (pip install -e '.[dev]')\n{version.stderr}"


def test_no_pyflakes_findings() -> None:
    result = _ruff("check", "--select", "F", "--output-format", "concise", "--no-cache", *PATHS)
    assert result.returncode == 0, f"ruff found problems (fix them, or see `ruff check --select F`):\n{result.stdout}{result.stderr}"


def test_the_lint_catches_an_undefined_name(tmp_path: Path) -> None:
    """The check can fail: the defect of issue 13 item 9, in a file of its own."""
    bad = tmp_path / "bad.py"
    bad.write_text("def parse(data):\n    raise TransientError('malformed reply')\n")
    result = _ruff("check", "--select", "F", "--output-format", "concise", "--no-cache", str(bad))
    assert result.returncode == 1 and "F821" in result.stdout, result.stdout
