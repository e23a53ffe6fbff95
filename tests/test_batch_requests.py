"""Batch request files: provider line formats, splitting by count and bytes, stable chunk keys."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from judgeflow.batch.requests import (
    PROVIDER_LIMITS,
    batch_limits,
    follow_up_chunks,
    iter_lines,
    write_chunks,
)
from judgeflow.prompts.render import RenderedPrompt
from judgeflow.schemas import content_hash
from judgeflow.specs import BatchSettings, JudgeSpec, expand_requests


def _rows(n: int, responses: int = 2) -> pl.DataFrame:
    data = []
    for i in range(n):
        resp = [f"answer {i}-{j} " + "x" * (i % 7) for j in range(responses)]
        data.append({
            "row_id": f"r{i:04d}", "instruction": f"question {i}", "responses": resp,
            "models": [None] * responses, "reference": None, "metadata": "{}", "source_index": i,
            "content_hash": content_hash(f"question {i}", resp, None),
        })
    return pl.DataFrame(data)


def _prompts(requests: pl.DataFrame) -> list[RenderedPrompt]:
    return [RenderedPrompt("sys", f"grade {rid} " + "y" * 50, "th1") for rid in requests["request_id"]]


def _spec(provider: str = "openai", **batch: int) -> JudgeSpec:
    return JudgeSpec(name=f"j-{provider}", provider=provider, mode="batch", model="m",
                     batch=BatchSettings(**batch))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_line_format_and_custom_ids(tmp_path: Path, provider: str) -> None:
    spec = _spec(provider)
    reqs = expand_requests(_rows(3), spec)
    chunks = write_chunks(spec, reqs, _prompts(reqs), tmp_path)
    assert len(chunks) == 1 and chunks[0].count == reqs.height == 6
    lines = list(iter_lines(chunks[0]))
    assert [ln["custom_id"] for ln in lines] == reqs["request_id"].to_list()
    assert chunks[0].custom_ids() == reqs["request_id"].to_list()
    if provider == "openai":
        assert lines[0]["method"] == "POST" and lines[0]["url"] == "/v1/chat/completions"
        assert lines[0]["body"]["messages"][0] == {"role": "system", "content": "sys"}
        assert lines[0]["body"]["model"] == "m"
    else:
        assert lines[0]["params"]["system"] == "sys"
        assert lines[0]["params"]["messages"] == [{"role": "user", "content": lines[0]["params"]["messages"][0]["content"]}]
        assert set(lines[0]) == {"custom_id", "params"}
    # sidecar keeps the request columns and the template hash for the join back
    meta = pl.read_parquet(chunks[0].meta_path)
    assert meta["template_hash"].unique().to_list() == ["th1"]
    assert meta["row_id"].to_list() == reqs["row_id"].to_list()


def test_split_by_count_is_deterministic(tmp_path: Path) -> None:
    spec = _spec(max_requests_per_batch=7)
    reqs = expand_requests(_rows(10), spec)  # 20 requests
    a = write_chunks(spec, reqs, _prompts(reqs), tmp_path / "a")
    b = write_chunks(spec, reqs, _prompts(reqs), tmp_path / "b")
    assert [c.count for c in a] == [7, 7, 6]
    assert [c.chunk_key for c in a] == [c.chunk_key for c in b]
    assert len({c.chunk_key for c in a}) == 3
    ids = [cid for c in a for cid in c.custom_ids()]
    assert ids == reqs["request_id"].to_list()


def test_split_by_bytes(tmp_path: Path) -> None:
    spec0 = _spec()
    reqs = expand_requests(_rows(10), spec0)
    one = write_chunks(spec0, reqs, _prompts(reqs), tmp_path / "one")[0]
    line_bytes = one.bytes // one.count
    limit = line_bytes * 5 + 10  # ~5 lines per chunk
    spec = _spec(max_bytes_per_batch=limit)
    chunks = write_chunks(spec, reqs, _prompts(reqs), tmp_path / "b")
    assert len(chunks) >= 4
    for c in chunks:
        assert c.bytes <= limit
        assert c.path.stat().st_size == c.bytes
    assert sum(c.count for c in chunks) == reqs.height
    with pytest.raises(ValueError, match="larger than the batch byte limit"):
        write_chunks(_spec(max_bytes_per_batch=50), reqs, _prompts(reqs), tmp_path / "c")


def test_provider_ceilings() -> None:
    assert batch_limits(_spec("openai", max_requests_per_batch=10**9))[0] == PROVIDER_LIMITS["openai"][0]
    assert batch_limits(_spec("anthropic", max_requests_per_batch=10**9))[0] == 100_000
    assert batch_limits(_spec("anthropic", max_bytes_per_batch=10**12))[1] < 256 * 1024 * 1024


def test_key_depends_on_round_and_follow_up_copies_lines(tmp_path: Path) -> None:
    spec = _spec()
    reqs = expand_requests(_rows(4), spec)
    (parent,) = write_chunks(spec, reqs, _prompts(reqs), tmp_path / "p")
    wanted = set(reqs["request_id"].to_list()[1:4])
    (child,) = follow_up_chunks(spec, [parent], wanted, tmp_path / "f", round_=2)
    (again,) = follow_up_chunks(spec, [parent], wanted, tmp_path / "g", round_=2)
    assert child.count == 3 and set(child.custom_ids()) == wanted
    assert child.chunk_key == again.chunk_key != parent.chunk_key
    parent_lines = {orjson.loads(x)["custom_id"]: x for x in parent.path.read_bytes().splitlines()}
    for raw in child.path.read_bytes().splitlines():
        assert raw == parent_lines[orjson.loads(raw)["custom_id"]]
    assert follow_up_chunks(spec, [parent], set(), tmp_path / "h", round_=2) == []


def test_prompt_count_mismatch(tmp_path: Path) -> None:
    spec = _spec()
    reqs = expand_requests(_rows(2), spec)
    with pytest.raises(ValueError, match="fewer"):
        write_chunks(spec, reqs, _prompts(reqs)[:-1], tmp_path)
