"""After a stop (deadline, budget) or with answers already stored, the Batch path sends only the
pending requests: never a request of the same row that is already answered (which the provider
would bill again). The notebook API's path, through the judgment store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import judgeflow
from judgeflow.api import load
from judgeflow.judging.records import JudgmentSink, judgment_record
from judgeflow.specs import expand_requests
from judgeflow.store import JudgmentStore
from tests.test_batch_runner import FAST, make_spec


def _rows(n: int = 6) -> list[dict[str, Any]]:
    return [{"instruction": f"Explain topic number {i}.",
             "responses": [f"Answer {i}, variant {j}, written carefully." for j in range(2)]}
            for i in range(n)]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_judge_sends_only_what_the_store_cannot_answer(
    make_simulator: Any, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JF_TEST_BATCH_KEY", "sk-test-batch-key-123456")
    sim = make_simulator(**FAST)
    spec = make_spec(sim, provider)
    rows = load(_rows()).rows
    requests = expand_requests(rows, spec)
    # candidate 0 of every row was answered by an earlier run (stopped before candidate 1)
    store = JudgmentStore.at(tmp_path / "_store")
    with JudgmentSink(store.judge_dir(spec)) as sink:
        for request in requests.filter(pl.col("candidate_a") == 0).iter_rows(named=True):
            sink.add(judgment_record(spec, request, score=3.0))
    out = judgeflow.judge(_rows(), [spec], workdir=tmp_path)
    assert int(sim.stats()[f"{provider}_batch_requests"]) == 6  # not 12: one pending per row
    assert out.height == 12 and (out["status"] == "ok").all()
    assert (out.filter(pl.col("candidate_a") == 0)["score"] == 3.0).all()  # the stored answers
