"""Live judging takes request slots from an outside (Prefect) rate limit in blocks."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from judgeflow.judging.live import SlotBlocks, judge_live_sync
from judgeflow.judging.records import JudgmentSink, read_judgments
from judgeflow.loading import content_hashes
from judgeflow.simulator import Simulator
from judgeflow.specs import JudgeSpec, expand_requests
from tasks.judge_live import provider_slots


def test_slots_are_taken_in_blocks_one_per_request(simulator: Simulator, tmp_path: Path) -> None:
    rows = pl.DataFrame(
        {"row_id": [f"r{i}" for i in range(60)], "instruction": [f"Q{i}?" for i in range(60)],
         "responses": [[f"a{i}", f"b{i}"] for i in range(60)], "reference": [None] * 60},
        schema_overrides={"reference": pl.String},
    )
    rows = rows.with_columns(content_hashes(rows).alias("content_hash"))
    spec = JudgeSpec(name="s", provider="openai-compatible", base_url=simulator.openai_base_url, api_key_env="X")
    requests = expand_requests(rows, spec)  # 120
    taken: list[int] = []

    async def acquire(n: int) -> None:
        taken.append(n)

    with JudgmentSink(tmp_path) as sink:
        stats = judge_live_sync(spec, rows, requests, sink, api_key="k", slots=SlotBlocks(acquire, block=50))
    assert stats.ok == 120
    assert taken == [50, 50, 50]  # ceil(120 / 50) blocks, never one call per request
    assert read_judgments(tmp_path).collect().height == 120


def test_only_hosted_providers_at_their_own_endpoint_take_slots() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # a server: limits are shared there
        assert provider_slots(JudgeSpec(name="o", provider="openai")) is not None
        assert provider_slots(JudgeSpec(name="a", provider="anthropic")) is not None
    assert provider_slots(JudgeSpec(name="v", provider="openai", base_url="http://127.0.0.1:1/v1")) is None
    assert provider_slots(JudgeSpec(name="c", provider="openai-compatible", base_url="http://x/v1")) is None
