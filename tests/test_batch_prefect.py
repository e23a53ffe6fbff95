"""The Prefect tasks: several judges' batches submitted and polled concurrently in a real flow."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.testing.utilities import prefect_test_harness

from judgeflow.batch.runner import BatchWorkspace
from judgeflow.specs import expand_requests
from tasks.batch import BatchStageResult, run_batch_judges_in_flow
from tests.test_batch_runner import FAST, check_scores, make_rows, make_spec

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    with prefect_test_harness(server_startup_timeout=90):
        yield


@flow(name="batch-judging-test")
def batch_flow(specs: list[Any], rows_path: str, workdir: str, out_dir: str,
               pending: dict[str, list[str]] | None = None) -> BatchStageResult:
    return run_batch_judges_in_flow(specs, rows_path, workdir, out_dir, tick_s=0.2, pending_requests=pending)


async def _artifacts(key: str) -> list[Any]:
    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))


def test_two_judges_concurrently_with_follow_ups(
    harness: None, make_simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JF_TEST_BATCH_KEY", "sk-test-batch-key-123456")
    sim = make_simulator(expire_first_n_batches=1, status_429_rate=0.2, retry_after_s=0.0, **FAST)
    rows = make_rows(6)
    rows_path = tmp_path / "rows.parquet"
    rows.write_parquet(rows_path)
    specs = [make_spec(sim, "openai"), make_spec(sim, "anthropic")]
    paths = batch_flow(specs, str(rows_path), str(tmp_path / "w"), str(tmp_path / "out")).out_dirs
    assert set(paths) == {"openai-judge", "anthropic-judge"}
    for name, path in paths.items():
        frame = pl.read_parquet(Path(path) / "*.parquet")
        assert frame.height == 12 and (frame["status"] == "ok").all(), name
        check_scores(rows, frame)
    stats = sim.stats()
    # per judge: 3 chunks + exactly one follow-up for its provider's first (expired) batch
    assert stats["openai_batches_created"] == stats["anthropic_batches_created"] == 4
    assert stats["custom_ids_paid_twice"] == 0
    entries = BatchWorkspace.at(tmp_path / "w").ledger.entries().values()
    assert all(e.status == "collected" for e in entries)
    progress = asyncio.run(_artifacts("batch-progress"))
    assert progress and progress[0].data == 100.0
    table = asyncio.run(_artifacts("batch-batches"))
    assert table and "openai-judge" in str(table[0].data)


def test_only_pending_requests_and_anomalies_in_flow(
    harness: None, make_simulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow path sends only the plan's pending requests and reports bad result lines."""
    monkeypatch.setenv("JF_TEST_BATCH_KEY", "sk-test-batch-key-123456")
    sim = make_simulator(batch_bad_line_rate=0.35, batch_line_faults_first_n=1, seed=4, **FAST)
    rows = make_rows(6)
    rows_path = tmp_path / "rows.parquet"
    rows.write_parquet(rows_path)
    spec = make_spec(sim, "openai", max_requests_per_batch=100)
    pending = expand_requests(rows, spec).filter(pl.col("candidate_a") == 1)
    pending_path = tmp_path / "pending.parquet"
    pending.write_parquet(pending_path)
    stage = batch_flow([spec], str(rows_path), str(tmp_path / "w"), str(tmp_path / "out"),
                       {spec.name: [str(pending_path)]})
    frame = pl.read_parquet(Path(stage.out_dirs[spec.name]) / "*.parquet")
    assert set(frame["request_id"]) == set(pending["request_id"]) and (frame["status"] == "ok").all()
    stats = sim.stats()
    bad = stats["faults"]["batch_bad_lines"]
    assert bad > 0 and stats["openai_batches_created"] == 2  # one batch, one follow-up
    assert stats["openai_batch_requests"] == 6 + bad  # the pending six, then the unreadable ones
    assert stage.anomaly_counts == {"invalid_line": bad} and len(stage.anomalies) == bad
    assert all(a["batch_id"] in a["where"] and " line " in a["where"] for a in stage.anomalies)
