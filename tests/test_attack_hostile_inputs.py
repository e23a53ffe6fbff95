"""The ``hostile_inputs`` reliability attack, run directly: it must try things and find nothing.

Before the fixes of issue 13 (items 6 and 11) it reported UTF-16 files as having no instruction
column, random bytes as a column problem, an empty CSV as unreadable, a ``run_id`` of
``../../../../x`` writing outside ``output.dir`` and a file as ``output.dir`` as a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.reliability.attacks import AttackContext, all_attacks
from benchmarks.reliability.attacks.hostile_inputs import CONFIG_CASES, file_cases


@pytest.mark.timeout(600)
def test_hostile_inputs_attack_finds_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    env = {k: v for k, v in os.environ.items() if k.startswith(("PREFECT_", "PATH", "HOME"))}
    ctx = AttackContext(root=tmp_path, env=env, s3=None, quick=True, say=said.append)
    result = all_attacks()["hostile_inputs"](ctx)
    assert result.tried >= 5 * (len(file_cases(True)) + len(CONFIG_CASES)), result.tried
    assert result.violations == [], result.violations
    assert result.numbers["files"] == len(file_cases(True)) and said


def test_the_attack_reports_an_escape_a_traceback_and_a_wrong_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its checks can fail: a CLI that writes outside output.dir and crashes is reported."""
    from benchmarks.reliability.attacks import hostile_inputs as attack_module

    def cli_that_escapes(args: list[str], env: dict, cwd: Path, limit_s: float) -> tuple[int, str]:
        (cwd / "sandbox" / "d1" / "escaped-run").mkdir(parents=True)
        return 0, "Traceback (most recent call last):\n"

    monkeypatch.setattr(attack_module, "_cli", cli_that_escapes)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(attack_module.JSONL, encoding="utf-8")
    tally = attack_module._Tally()
    attack_module._attack_config(CONFIG_CASES[0], tmp_path, rows, {}, tally)
    joined = " ".join(tally.violations)
    assert "wrote outside output.dir" in joined and "escaped-run" in joined, joined
    assert "traceback" in joined and "exited 0" in joined, joined
