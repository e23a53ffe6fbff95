"""Batch anomalies reach the build: the flow's summary and the HTML report say how many result
lines were bad, and the build still completes with every request answered (issue 13 item 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from judgeflow.config import BuildConfig

pytestmark = pytest.mark.prefect


def test_bad_result_lines_are_in_the_summary_and_report(
    prefect_harness: Path, make_simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.build import build_preference_dataset

    monkeypatch.setenv("JF_TEST_KEY", "sk-test-0123456789")
    sim = make_simulator(batch_validating_s=0.05, batch_in_progress_s=0.2, batch_finalizing_s=0.05,
                         batch_bad_line_rate=0.3, batch_line_faults_first_n=1, seed=4)
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(b"".join(orjson.dumps({
        "id": f"row-{i}", "prompt": f"Explain idea number {i}.",
        "responses": [f"Short take {i}.", f"A longer explanation of idea {i} with an example."],
    }) + b"\n" for i in range(8)))
    config = BuildConfig.model_validate({
        "dataset": "anomalies", "input": {"uri": str(rows)},
        "judges": [{"name": "gpt-batch", "kind": "absolute", "provider": "openai", "mode": "batch",
                    "model": "gpt-4o-mini", "base_url": sim.openai_base_url, "api_key_env": "JF_TEST_KEY",
                    "batch": {"poll_initial_s": 0.1, "poll_max_s": 0.5, "deadline_s": 120}}],
        "output": {"dir": str(tmp_path / "out")},
        "pairs": {"min_margin": 0},
    })
    result = build_preference_dataset(config)
    bad = sim.stats()["faults"]["batch_bad_lines"]
    assert bad > 0 and result["status"] == "complete"
    assert result["summary"]["batch_anomalies"] == f"{bad} ({bad} invalid_line)"
    assert result["counts"]["rows_judged"] == 8  # the unreadable answers were asked again
    report = Path(result["report"]).read_text()
    assert "batch_anomalies" in report and f"{bad} ({bad} invalid_line)" in report
    # a second build of the same rows sends nothing and has nothing to report
    again = build_preference_dataset(config)
    assert "batch_anomalies" not in again["summary"]
