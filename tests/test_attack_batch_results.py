"""The ``batch_results`` reliability attack, run directly (simulators on loopback, no Prefect).

Before the fix of issue 13 items 4 and 10 it reported, for both providers: the run with bad
result lines failing (a bare ``JSONDecodeError``, or ``BatchMismatchError`` for a custom_id
never sent) and the run after the ledger was cut failing with a ``JSONDecodeError`` that named
no file.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability.attacks import AttackContext, all_attacks
from benchmarks.reliability.attacks.batch_results import KINDS, PROVIDERS


def test_batch_results_attack_finds_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    ctx = AttackContext(root=tmp_path / "attack", env={}, s3=None, quick=True, say=said.append)
    result = all_attacks()["batch_results"](ctx)
    assert result.tried > 0
    assert result.violations == []
    for provider in PROVIDERS:
        for kind in KINDS:  # every kind of bad line was really injected, and counted
            injected = result.numbers[f"{provider}_{kind}_injected"]
            assert injected > 0 and result.numbers[f"{provider}_{kind}_counted"] == injected
        assert result.numbers[f"{provider}_asked_again"] > 0
        assert result.numbers[f"{provider}_paid_twice"] == 0
        assert result.numbers[f"{provider}_ledger_batches_created_again"] == 0
    assert any("set aside as ['ledger.json.corrupt-" in line for line in said)
    assert result.scan_dirs == [ctx.root]
