"""Batch judging end to end against the provider simulator (official SDKs, real HTTP).

Batch life cycles are compressed to well under a second so the file runs in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from judgeflow.batch.anthropic_batch import AnthropicBatchProvider
from judgeflow.batch.ledger import LedgerEntry, entry_id
from judgeflow.batch.openai_batch import OpenAIBatchProvider
from judgeflow.batch.runner import (
    BatchWorkspace,
    cancel_open_batches,
    is_transient,
    make_provider,
    prepare_chunks,
    run_batch_judges,
    submit_judge,
)
from judgeflow.schemas import content_hash
from judgeflow.simulator import Simulator
from judgeflow.simulator.judge import expected_score
from judgeflow.specs import BatchSettings, JudgeSpec, expand_requests

FAST = {"batch_validating_s": 0.05, "batch_in_progress_s": 0.25, "batch_finalizing_s": 0.05,
        "batch_cancel_s": 0.05}
PROVIDERS = ["openai", "anthropic"]


def make_rows(n: int = 6) -> pl.DataFrame:
    """``n`` rows with two candidates each: 2n absolute requests."""
    data = []
    for i in range(n):
        resp = [f"Answer {i} written carefully, variant {j}." for j in range(2)]
        data.append({
            "row_id": f"r{i:03d}", "instruction": f"Explain topic number {i}.", "responses": resp,
            "models": ["m1", "m2"], "reference": None, "metadata": "{}", "source_index": i,
            "content_hash": content_hash(f"Explain topic number {i}.", resp, None),
        })
    return pl.DataFrame(data)


def make_spec(sim: Simulator, provider: str, **batch: Any) -> JudgeSpec:
    settings = {"max_requests_per_batch": 5, "poll_initial_s": 0.05, "poll_max_s": 0.2,
                "poll_backoff": 1.5, "deadline_s": 60.0, "max_rounds": 3} | batch
    return JudgeSpec(
        name=f"{provider}-judge", kind="absolute", provider=provider, mode="batch",
        model="gpt-4o-mini" if provider == "openai" else "claude-3-5-haiku-latest",
        base_url=sim.openai_base_url if provider == "openai" else sim.anthropic_base_url,
        api_key_env="JF_TEST_BATCH_KEY", use_reference=False, batch=BatchSettings(**settings),
    )


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JF_TEST_BATCH_KEY", "sk-test-batch-key-123456")


def created(sim: Simulator, provider: str) -> int:
    return int(sim.stats()[f"{provider}_batches_created"])


def check_scores(rows: pl.DataFrame, frame: pl.DataFrame) -> None:
    """Every ok judgment carries the score the simulator's judge gives that candidate."""
    texts = {(r["row_id"], k): t for r in rows.iter_rows(named=True) for k, t in enumerate(r["responses"])}
    ok = frame.filter(pl.col("status") == "ok")
    assert ok.height > 0
    for rec in ok.iter_rows(named=True):
        assert rec["score"] == expected_score(texts[(rec["row_id"], rec["candidate_a"])])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_success_split_and_resume_without_resubmitting(
    make_simulator: Any, tmp_path: Path, provider: str
) -> None:
    sim = make_simulator(**FAST)
    rows = make_rows(6)
    spec = make_spec(sim, provider)
    out = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert out.height == 12 and out["request_id"].n_unique() == 12
    assert out["status"].to_list() == ["ok"] * 12
    check_scores(rows, out)
    assert (out["attempts"] == 1).all() and (out["input_tokens"] > 0).all()
    assert created(sim, provider) == 3  # 12 requests, at most 5 per batch
    stats = sim.stats()
    assert stats["custom_ids_paid_twice"] == 0
    assert "sk-test-batch-key" not in (tmp_path / "w" / "ledger.json").read_text()
    # a second run of the same build re-attaches: nothing new is created, same judgments
    again = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert created(sim, provider) == 3
    assert again.sort("request_id").equals(out.sort("request_id"))
    on_disk = pl.read_parquet(tmp_path / "out" / spec.name / "*.parquet")
    assert on_disk.height == 12


@pytest.mark.parametrize("provider", PROVIDERS)
def test_partial_errors_are_resubmitted(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim = make_simulator(batch_request_error_rate=0.4, seed=3, **FAST)
    spec = make_spec(sim, provider)
    rows = make_rows(6)
    out = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert out.height == 12
    assert created(sim, provider) > 3  # follow-up rounds happened
    assert (out["attempts"] > 1).any()
    ok = out.filter(pl.col("status") == "ok")
    # with 3 rounds at 40 % errors almost everything ends ok; what does not, says why
    assert ok.height >= 10
    assert out.filter(pl.col("status") == "failed")["error"].is_not_null().all()
    check_scores(rows, out)
    assert sim.stats()["custom_ids_paid_twice"] == 0
    ledger = BatchWorkspace.at(tmp_path / "w").ledger.entries()
    assert any(e.parent for e in ledger.values())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_persistent_errors_end_failed_with_reason(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim = make_simulator(batch_request_error_rate=1.0, batch_request_error_seed_by_attempt=False, **FAST)
    spec = make_spec(sim, provider, max_rounds=2, max_requests_per_batch=100)
    out = run_batch_judges(make_rows(3), [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert out.height == 6
    # a provider's 5xx is infrastructure: status "error", asked again by the next run
    assert (out["status"] == "error").all() and (out["attempts"] == 2).all()
    assert out["error"].is_not_null().all() and out["score"].is_null().all()
    assert created(sim, provider) == 2  # one batch per round, max_rounds=2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_expired_batch_goes_to_a_follow_up_round(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim = make_simulator(expire_first_n_batches=1, **FAST)
    spec = make_spec(sim, provider)
    rows = make_rows(6)
    out = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert out["status"].to_list() == ["ok"] * 12
    check_scores(rows, out)
    assert created(sim, provider) == 4  # 3 chunks + 1 follow-up for the expired one
    entries = BatchWorkspace.at(tmp_path / "w").ledger.entries().values()
    first = [e for e in entries if e.round == 1 and e.follow_ups]
    assert len(first) == 1
    if provider == "openai":  # the whole batch expired; its unfinished requests count as failed
        assert first[0].provider_status == "expired"
    else:  # Anthropic batches end; the unfinished requests are "expired" results
        assert first[0].counts.get("expired", 0) > 0
    assert sim.stats()["custom_ids_paid_twice"] == 0


def test_failed_validation_is_resubmitted(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(fail_validation_first_n_batches=1, **FAST)
    spec = make_spec(sim, "openai")
    out = run_batch_judges(make_rows(6), [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert out["status"].to_list() == ["ok"] * 12
    assert created(sim, "openai") == 4
    failed = [e for e in BatchWorkspace.at(tmp_path / "w").ledger.entries().values()
              if e.provider_status == "failed"]
    assert len(failed) == 1 and "token_limit_exceeded" in (failed[0].error or "")


def test_failed_validation_every_time_ends_failed(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(batch_fail_validation=True, **FAST)
    spec = make_spec(sim, "openai", max_rounds=2, max_requests_per_batch=100)
    out = run_batch_judges(make_rows(2), [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert (out["status"] == "error").all()  # the provider refused the batch: asked again next run
    assert out["error"].str.contains("token_limit_exceeded").all()
    assert created(sim, "openai") == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_on_status_calls_survived(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim = make_simulator(status_429_rate=0.5, seed=7, retry_after_s=0.0, **FAST)
    spec = make_spec(sim, provider, max_requests_per_batch=100)
    out = run_batch_judges(make_rows(4), [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert out["status"].to_list() == ["ok"] * 8
    stats = sim.stats()
    assert stats["faults_total"] > 0
    assert created(sim, provider) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_lost_create_is_found_not_resubmitted(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    """Crash between ``create`` returning and the ledger write: the re-run finds the batch."""
    sim = make_simulator(**FAST)
    spec = make_spec(sim, provider, max_requests_per_batch=100)
    rows = make_rows(3)
    ws = BatchWorkspace.at(tmp_path / "w")
    (chunk,) = prepare_chunks(spec, rows, ws)
    provider_ = make_provider(spec)
    eid = entry_id(spec.name, 1, chunk.chunk_key)
    ws.ledger.put(LedgerEntry(entry_id=eid, provider=provider, judge=spec.name, round=1,
                              chunk_key=chunk.chunk_key, chunk=chunk.as_dict()))
    file_id = provider_.upload(chunk)
    meta = {"judgeflow_judge": spec.name, "judgeflow_round": "1", "judgeflow_chunk": chunk.chunk_key}
    lost = provider_.create(chunk, file_id, meta)  # ... and the process dies here
    out = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert created(sim, provider) == 1
    assert ws.ledger.get(eid).batch_id == lost.batch_id  # type: ignore[union-attr]
    assert out["status"].to_list() == ["ok"] * 6


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancel_then_resume_collects_and_resubmits_the_rest(
    make_simulator: Any, tmp_path: Path, provider: str
) -> None:
    sim = make_simulator(batch_validating_s=0.05, batch_in_progress_s=30.0, batch_finalizing_s=0.05,
                         batch_cancel_s=0.05)
    spec = make_spec(sim, provider, max_requests_per_batch=100)
    rows = make_rows(3)
    ws = BatchWorkspace.at(tmp_path / "w")
    entries = submit_judge(spec, rows, ws)
    assert cancel_open_batches(ws, {spec.name: make_provider(spec)}) == [entries[0].batch_id]
    assert sim.stats()["batch_cancels"] == 1
    sim.configure(batch_in_progress_s=0.25)
    out = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert out["status"].to_list() == ["ok"] * 6
    assert created(sim, provider) == 2  # the cancelled batch + one follow-up
    assert sim.stats()["custom_ids_paid_twice"] == 0


def test_provider_reprs_hide_the_key(make_simulator: Any) -> None:
    sim = make_simulator(**FAST)
    for provider in PROVIDERS:
        p = make_provider(make_spec(sim, provider))
        assert isinstance(p, OpenAIBatchProvider | AnthropicBatchProvider)
        assert "sk-test" not in repr(p)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unparseable_replies_are_asked_again(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim = make_simulator(rate_unparseable=0.4, seed=11, **FAST)
    spec = make_spec(sim, provider)
    rows = make_rows(6)
    out = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    unparseable = sim.stats()["faults"].get("unparseable", 0)
    assert unparseable > 0 and created(sim, provider) > 3
    assert (out["attempts"] > 1).any()
    check_scores(rows, out)
    failed = out.filter(pl.col("status") == "failed")
    assert failed["error"].str.starts_with("unparseable").all()
    assert failed["raw_output"].is_not_null().all()  # the unreadable text is kept
    # re-asking an unparseable reply is a new (paid) sample of a request that "succeeded";
    # nothing else is ever sent twice
    reasked = unparseable - failed.height
    assert sim.stats()["custom_ids_paid_twice"] == reasked


def test_ctrl_c_cancels_open_batches(make_simulator: Any, tmp_path: Path) -> None:
    import _thread
    import threading

    sim = make_simulator(batch_validating_s=0.05, batch_in_progress_s=30.0, batch_cancel_s=0.05)
    spec = make_spec(sim, "openai")
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_batch_judges(make_rows(6), [spec], tmp_path / "w", tmp_path / "out")
    finally:
        timer.cancel()
    assert created(sim, "openai") == 3
    assert sim.stats()["batch_cancels"] == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deadline_cancels_records_not_sent_and_the_next_run_asks_again(
    make_simulator: Any, tmp_path: Path, provider: str
) -> None:
    sim = make_simulator(batch_validating_s=0.05, batch_in_progress_s=30.0, batch_cancel_s=0.05)
    spec = make_spec(sim, provider, deadline_s=0.5, max_requests_per_batch=100)
    rows = make_rows(3)
    out = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert sim.stats()["batch_cancels"] == 1 and created(sim, provider) == 1  # no follow-up
    assert out.height == 6 and (out["status"] == "not_sent").all()  # never run: asked again
    assert out["error"].is_not_null().all()
    # the next run needs the same six requests: it must ask them, not find the same cancelled
    # batch in the ledger and hand back its "not sent" records forever
    sim.configure(batch_in_progress_s=0.25)
    again = run_batch_judges(rows, [spec.model_copy(update={"batch": spec.batch.model_copy(
        update={"deadline_s": 60.0})})], tmp_path / "w", tmp_path / "out")[spec.name]
    assert again["status"].to_list() == ["ok"] * 6
    check_scores(rows, again)
    assert created(sim, provider) == 2 and sim.stats()["custom_ids_paid_twice"] == 0


def test_openai_batches_are_found_by_metadata_when_the_ledger_is_gone(make_simulator: Any, tmp_path: Path) -> None:
    """A build on a fresh disk (a pod without its volume) must not pay for OpenAI batches twice."""
    sim = make_simulator(**FAST)
    rows = make_rows(6)
    spec = make_spec(sim, "openai")
    out = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out")[spec.name]
    assert created(sim, "openai") == 3
    again = run_batch_judges(rows, [spec], tmp_path / "fresh-disk", tmp_path / "out2")[spec.name]
    assert created(sim, "openai") == 3  # re-attached through the batches' metadata
    assert sim.stats()["custom_ids_paid_twice"] == 0
    assert again.sort("request_id").equals(out.sort("request_id"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_pending_requests_are_sent(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    """Rows with one request answered already (a deadline or budget stop, another path): only
    the pending request of each row is sent, never the answered one again."""
    sim = make_simulator(**FAST)
    rows = make_rows(6)
    spec = make_spec(sim, provider)
    requests = expand_requests(rows, spec)
    pending = set(requests.filter(pl.col("candidate_a") == 1)["request_id"])  # one of two per row
    out = run_batch_judges(rows, [spec], tmp_path / "w", tmp_path / "out",
                           pending={spec.name: pending})[spec.name]
    assert set(out["request_id"]) == pending and out["status"].to_list() == ["ok"] * 6
    assert int(sim.stats()[f"{provider}_batch_requests"]) == 6
    # nothing pending: nothing is sent
    none = run_batch_judges(rows, [spec], tmp_path / "w2", tmp_path / "out2", pending={spec.name: set()})
    assert none[spec.name].is_empty() and int(sim.stats()[f"{provider}_batch_requests"]) == 6


def test_transient_check_survives_a_half_imported_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread's first ``import anthropic`` leaves a module without its attributes in
    ``sys.modules``; classifying an error then must not raise (it ran inside Prefect's retry
    condition, and an exception there skipped the retry)."""
    import sys
    import types

    import httpx
    import openai

    monkeypatch.setitem(sys.modules, "anthropic", types.ModuleType("anthropic"))
    request = httpx.Request("GET", "http://127.0.0.1/v1/batches/b")
    assert is_transient(openai.APIConnectionError(request=request))
    assert is_transient(openai.APITimeoutError(request=request))
    response = httpx.Response(429, request=request)
    assert is_transient(openai.RateLimitError("slow down", response=response, body=None))
    assert not is_transient(openai.BadRequestError("bad", response=httpx.Response(400, request=request), body=None))
    assert not is_transient(ValueError("a bug"))
