"""Batch result files that lie: invalid lines, custom_ids never sent, duplicate custom_ids.

One bad line must cost one request (asked again), never the whole paid batch; unknown and
duplicate custom_ids are anomalies the build reports, and a custom_id answered twice
differently is failed (and asked again), not silently decided by whichever line came last.
Real HTTP to the simulator through the official SDKs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from judgeflow.batch.reconcile import Reconciler
from judgeflow.batch.runner import BatchWorkspace, anomalies_of, run_batch_judges
from judgeflow.judging.records import read_judgments
from tests.test_batch_runner import FAST, PROVIDERS, check_scores, created, make_rows, make_spec


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JF_TEST_BATCH_KEY", "sk-test-batch-key-123456")


def _by_kind(ws: BatchWorkspace) -> dict[str, int]:
    out: dict[str, int] = {}
    for anomaly in anomalies_of(ws):
        out[anomaly["kind"]] = out.get(anomaly["kind"], 0) + 1
    return out


def _follow_ups(ws: BatchWorkspace) -> int:
    """Round-1 batches that passed requests on to a second round (each one did so once)."""
    entries = ws.ledger.entries().values()
    return sum(1 for e in entries if e.round == 1 and e.follow_ups and e.retry_ids)


def _round_one(ws: BatchWorkspace) -> pl.DataFrame:
    dirs = [e.collected_path for e in ws.ledger.entries().values() if e.round == 1 and e.collected_path]
    return pl.concat([read_judgments(d).collect() for d in dirs])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_bad_line_costs_one_request_not_the_batch(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    # the three round-1 batches get bad lines; the follow-up round comes back clean
    sim = make_simulator(batch_bad_line_rate=0.35, batch_line_faults_first_n=3, seed=4, **FAST)
    spec = make_spec(sim, provider)
    rows = make_rows(6)
    ws = BatchWorkspace.at(tmp_path / "w")
    out = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    bad = sim.stats()["faults"]["batch_bad_lines"]
    assert bad > 0
    assert out.height == 12 and out["status"].to_list() == ["ok"] * 12  # the bad ones asked again
    check_scores(rows, out)
    assert created(sim, provider) == 3 + _follow_ups(ws)  # one follow-up per batch with bad lines
    first = _round_one(ws)
    assert first.filter(pl.col("status") == "ok").height == 12 - bad  # the rest collected at once
    failed = first.filter(pl.col("status") != "ok")
    assert (failed["status"] == "error").all()  # infrastructure: asked again, never final
    anomalies = [a for a in anomalies_of(ws) if a["kind"] == "invalid_line"]
    assert len(anomalies) == bad
    for anomaly in anomalies:  # each names its batch and line
        assert anomaly["batch_id"] and anomaly["batch_id"] in anomaly["where"]
        assert " line " in anomaly["where"]
    assert sim.stats()["custom_ids_paid_twice"] == 0
    # a second run of the same build pays nothing and gives the same judgments
    made = created(sim, provider)
    again = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert created(sim, provider) == made
    assert again.sort("request_id").equals(out.sort("request_id"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_and_duplicate_custom_ids_are_anomalies(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim = make_simulator(batch_unknown_id_rate=0.2, batch_duplicate_rate=0.2, batch_conflict_rate=0.25,
                         batch_line_faults_first_n=3, seed=13, **FAST)
    spec = make_spec(sim, provider)
    rows = make_rows(6)
    ws = BatchWorkspace.at(tmp_path / "w")
    out = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    faults = sim.stats()["faults"]
    conflicts = faults.get("batch_conflicting_duplicates", 0)
    assert faults.get("batch_unknown_custom_ids", 0) and faults.get("batch_duplicate_lines", 0) and conflicts
    assert _by_kind(ws) == {
        "unknown_custom_id": faults["batch_unknown_custom_ids"],
        "duplicate_custom_id": faults["batch_duplicate_lines"],
        "conflicting_custom_id": conflicts,
    }
    first = _round_one(ws)
    assert first["request_id"].n_unique() == first.height == 12  # one record per request
    conflicting = first.filter(pl.col("error").str.contains("different answers"))
    assert conflicting.height == conflicts and (conflicting["status"] == "error").all()
    assert out["status"].to_list() == ["ok"] * 12  # the conflicting ones were asked again
    check_scores(rows, out)
    assert created(sim, provider) == 3 + _follow_ups(ws)
    assert sim.stats()["custom_ids_paid_twice"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_foreign_custom_ids_among_ours_are_ignored(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    """Every line with a foreign twin: as many foreign ids as ours is still our batch."""
    sim = make_simulator(batch_unknown_id_rate=1.0, **FAST)
    spec = make_spec(sim, provider, max_requests_per_batch=100)
    ws = BatchWorkspace.at(tmp_path / "w")
    out = run_batch_judges(make_rows(2), [spec], ws.root, tmp_path / "out")[spec.name]
    assert out["status"].to_list() == ["ok"] * 4
    assert _by_kind(ws) == {"unknown_custom_id": 4}


def test_a_batch_of_mostly_foreign_custom_ids_is_not_ours() -> None:
    """More foreign custom_ids than ours: a lost-create search took someone else's batch."""
    from judgeflow.batch.runner import BatchMismatchError
    from judgeflow.batch.types import ResultItem

    tally = Reconciler("msgbatch_1", {"a"})
    for cid in ("a", "x", "y"):
        tally.add(ResultItem(cid, text="t", where=f"line {cid}"))
    with pytest.raises(BatchMismatchError, match="msgbatch_1 returned 2 results"):
        tally.check_ours("j:r1:k")
