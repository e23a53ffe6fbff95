"""The nightly build flow, run for real: Prefect, the simulator over HTTP, moto S3 on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from judgeflow.config import BuildConfig
from judgeflow.simulator import Simulator
from judgeflow.storage.s3 import S3Config
from tests.stand_ins.rows import write_build_rows

pytestmark = pytest.mark.prefect

CANARY = "sk-canary-7f3a9c2e-never-log-me"


def _write_rows(path: Path, n: int = 40) -> None:
    write_build_rows(path, n)


def _config(tmp_path: Path, sim: Simulator, s3: S3Config, bucket: str) -> BuildConfig:
    fast = {"poll_initial_s": 0.2, "poll_max_s": 1.0, "deadline_s": 120}
    return BuildConfig.model_validate(
        {
            "dataset": "flowtest",
            "input": {"uri": str(tmp_path / "rows.jsonl")},
            "judges": [
                {"name": "gpt-batch", "kind": "absolute", "provider": "openai", "mode": "batch",
                 "model": "gpt-4o-mini", "base_url": sim.openai_base_url, "api_key_env": "JF_TEST_KEY",
                 "batch": fast},
                {"name": "claude-batch", "kind": "pairwise", "template": "pairwise-json",
                 "provider": "anthropic", "mode": "batch", "model": "claude-3-5-haiku-latest",
                 "base_url": sim.anthropic_base_url, "api_key_env": "JF_TEST_KEY", "batch": fast},
                {"name": "prometheus", "kind": "relative", "provider": "openai-compatible", "mode": "live",
                 "model": "prometheus-7b-v2.0", "base_url": sim.openai_base_url, "api_key_env": "JF_TEST_KEY"},
            ],
            "output": {
                "dir": str(tmp_path / "out"), "publish_uri": f"s3://{bucket}/datasets",
                "formats": ["parquet", "jsonl"], "s3": {"endpoint_url": s3.endpoint_url, "region": "us-east-1"},
            },
            "chunk_size": 50,
        }
    )


def test_build_judges_merges_publishes_and_is_incremental(
    prefect_harness: Path, simulator: Simulator, s3_config: S3Config, s3_bucket: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.build import build_preference_dataset

    monkeypatch.setenv("JF_TEST_KEY", CANARY)
    _write_rows(tmp_path / "rows.jsonl")
    config = _config(tmp_path, simulator, s3_config, s3_bucket)

    first: dict[str, Any] = build_preference_dataset(config)
    counts = first["counts"]
    assert counts["rows_in"] == 42
    assert counts["rows_quarantined"] == 2
    assert counts["rows_in"] == counts["rows_judged"] + counts["rows_quarantined"] + counts["rows_failed"]
    assert counts["rows_judged"] == 40
    assert counts["pairs"] > 0
    stats = simulator.stats()
    assert stats["openai_batches_created"] == 1 and stats["anthropic_batches_created"] == 1
    assert stats["custom_ids_paid_twice"] == 0 and stats["duplicate_successes"] == 0
    # 40 rows with 2 or 3 candidates: 100 absolute items; pairs 20*1 + 20*3 = 80, both orders
    assert stats["openai_batch_requests"] == 100
    assert stats["anthropic_batch_requests"] == 160
    assert stats["chat_completions"] == 160
    assert counts["requests_sent"] == 420

    run_dir = Path(first["run_dir"])
    pairs = pl.read_parquet(run_dir / "pairs.parquet")
    assert {"prompt", "chosen", "rejected", "margin", "judges", "run_id"} <= set(pairs.columns)
    assert (pairs["chosen"] != pairs["rejected"]).all()
    quarantine = pl.read_parquet(run_dir / "quarantine.parquet")
    assert sorted(quarantine["field"].to_list()) == ["instruction", "line"] or quarantine.height == 2
    assert "<svg" in (run_dir / "report.html").read_text()

    # published: every manifest file is in S3, byte-identical, and the manifest's counts add up
    client = s3_config.client()
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    prefix = first["published"]["prefix"]
    for name, info in [*manifest["files"].items(), ("manifest.json", {"key": "manifest.json"})]:
        body = client.get_object(Bucket=s3_bucket, Key=prefix + info["key"])["Body"].read()
        assert body == (run_dir / name).read_bytes(), name
    assert first["published"]["uploaded"][-1].endswith("manifest.json")
    m = manifest["counts"]
    assert m["rows_in"] == m["rows_judged"] + m["rows_quarantined"] + m["rows_failed"]

    # the key never reaches outputs
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path

    # a second run of the same build sends nothing and publishes the same dataset
    simulator.reset_stats()
    second = build_preference_dataset(config)
    again = simulator.stats()
    assert again["chat_completions"] == 0 and again["messages"] == 0
    assert again["openai_batches_created"] == 0 and again["anthropic_batches_created"] == 0
    assert second["counts"]["requests_sent"] == 0
    assert second["run_dir"] == first["run_dir"]
    assert pl.read_parquet(Path(second["run_dir"]) / "pairs.parquet").equals(pairs)


def _live_config(tmp_path: Path, sim: Simulator, s3: S3Config, bucket: str, rows: str = "rows.jsonl") -> BuildConfig:
    return BuildConfig.model_validate(
        {
            "dataset": "keytest",
            "input": {"uri": str(tmp_path / rows)},
            "judges": [
                {"name": "prometheus", "kind": "relative", "provider": "openai-compatible", "mode": "live",
                 "model": "prometheus-7b-v2.0", "base_url": sim.openai_base_url, "api_key_env": "JF_TEST_KEY",
                 "max_retries": 1},
            ],
            "output": {
                "dir": str(tmp_path / "out"), "publish_uri": f"s3://{bucket}/datasets",
                "s3": {"endpoint_url": s3.endpoint_url, "region": "us-east-1"},
            },
        }
    )


def test_a_wrong_key_fails_the_build_and_the_fixed_build_asks_everything_again(
    prefect_harness: Path, simulator: Simulator, s3_config: S3Config, s3_bucket: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13 items 7 and 8: every judgment failed on a 401 -> the flow run is Failed, the
    manifest says so and nothing is published; with the key fixed the same build sends every
    request again (none was final) and succeeds."""
    from flows.build import build_preference_dataset
    from judgeflow.health import BuildFailed

    simulator.configure(require_api_key=CANARY)
    monkeypatch.setenv("JF_TEST_KEY", "sk-wrong-0123456789abcdef")
    _write_rows(tmp_path / "rows.jsonl", n=10)
    config = _live_config(tmp_path, simulator, s3_config, s3_bucket)

    state = build_preference_dataset(config, return_state=True)
    assert state.is_failed()
    assert "judge 'prometheus'" in (state.message or "") and "HTTP 401" in (state.message or "")
    failed = state.result(raise_on_failure=False)
    assert isinstance(failed, BuildFailed) and failed.result["status"] == "failed"
    requests = failed.result["judges"][0]["requests"]
    assert requests > 0 and failed.result["judges"][0]["failed"] == requests
    manifest = orjson.loads((Path(failed.result["run_dir"]) / "manifest.json").read_bytes())
    assert manifest["status"] == "failed" and manifest["failures"]
    assert failed.result["published"] is None
    assert s3_config.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    assert simulator.stats()["unauthorized"] == requests

    monkeypatch.setenv("JF_TEST_KEY", CANARY)
    simulator.reset_stats()
    second: dict[str, Any] = build_preference_dataset(config)
    assert second["status"] == "complete" and second["published"]
    judge = second["judges"][0]
    assert (judge["ok"], judge["failed"], judge["from_store"]) == (requests, 0, 0)
    assert simulator.stats()["successful_answers"] == requests
    assert second["counts"]["requests_sent"] == requests
    manifest = orjson.loads((Path(second["run_dir"]) / "manifest.json").read_bytes())
    assert manifest["status"] == "complete"


def test_an_empty_input_fails_the_build(
    prefect_harness: Path, simulator: Simulator, s3_config: S3Config, s3_bucket: str, tmp_path: Path,
) -> None:
    from flows.build import build_preference_dataset
    from judgeflow.health import BuildFailed

    (tmp_path / "empty.jsonl").write_bytes(b"")
    config = _live_config(tmp_path, simulator, s3_config, s3_bucket, rows="empty.jsonl")
    with pytest.raises(BuildFailed, match="holds no rows"):
        build_preference_dataset(config)
    assert simulator.stats()["chat_completions"] == 0
