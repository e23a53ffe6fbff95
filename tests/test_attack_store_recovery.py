"""The ``store_recovery`` reliability attack, run directly against a real Prefect server.

Before the fix of issue 13 items 7, 8 and 10 it reported: the wrong-key build exiting 0, the
fixed-key build sending nothing (every 401 stored as a final failure), and the build after the
planted parts failing with a polars footer error that named no file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from benchmarks.reliability.attacks import all_attacks


@pytest.mark.prefect
@pytest.mark.timeout(900)
def test_store_recovery_attack_finds_nothing(attack_context: Any, prefect_server: Any) -> None:
    said: list[str] = []
    ctx = attack_context(said)
    result = all_attacks()["store_recovery"](ctx)
    assert result.violations == [], result.violations
    assert result.tried > 0 and len(said) == 3, said
    n = result.numbers
    assert n["wrong_key_exit_code"] == 1 and n["key_fixed_exit_code"] == 0 and n["corrupt_parts_exit_code"] == 0
    assert n["wrong_key_unauthorized"] == n["key_fixed_answers"] == n["requests"] > 0
    assert n["parts_damaged"] == 2 and 0 < n["corrupt_parts_answers"] == n["requests_in_cut_part"] < n["requests"]


def test_damage_store_cuts_a_part_that_holds_answers(tmp_path: Path) -> None:
    """The attack's own planting can be checked: it cuts an answered part and plants a zero-byte one."""
    from benchmarks.reliability.attacks.store_recovery import build_config, damage_store
    from judgeflow.judging.records import JudgmentSink, judgment_record
    from judgeflow.simulator import Simulator, SimulatorConfig
    from judgeflow.store import JudgmentStore

    with Simulator(SimulatorConfig()) as sim:
        config = build_config(tmp_path, sim, tmp_path / "rows.jsonl", None, None)
    store = JudgmentStore.at(tmp_path / "store")
    spec = config.judges[0]
    with JudgmentSink(store.judge_dir(spec), prefix="failed") as sink:
        sink.add(judgment_record(spec, {"request_id": "x", "row_id": "r", "candidate_a": 0}, error="e", status="error"))
    with JudgmentSink(store.judge_dir(spec), prefix="ok") as sink:
        sink.extend(judgment_record(spec, {"request_id": f"q{i}", "row_id": "r", "candidate_a": 0}, score=1)
                    for i in range(3))
    damaged, lost = damage_store(store, config)
    assert lost == {"q0", "q1", "q2"} and len(damaged) == 2
    assert damaged[0].name.startswith("ok-") and damaged[1].stat().st_size == 0
    with pytest.raises(pl.exceptions.PolarsError):
        pl.read_parquet(damaged[0])
