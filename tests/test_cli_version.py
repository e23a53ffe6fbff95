"""``judgeflow --version`` prints the installed package's version."""

from __future__ import annotations

import importlib.metadata

from typer.testing import CliRunner

from judgeflow.cli import app


def test_version_flag_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"judgeflow {importlib.metadata.version('judgeflow')}"
