"""Live judging end to end over real HTTP to the provider simulator.

Every request must end in exactly one record (judged, or failed with its reason), verdicts must
equal the simulator's deterministic judge, parse failures are re-asked only for the failed items,
timeouts and faults are retried, the budget cap stops new sends and keeps what was done, and the
Prefect task skips what is already recorded.
"""

from __future__ import annotations

import logging

import asyncio
import time
from pathlib import Path

import polars as pl
import pytest

from judgeflow.clients import ResilientClient, SDKOpenAIClient, make_transport
from judgeflow.cost import Budget, cost_of
from judgeflow.clients import PermanentError, TransientError
from judgeflow.clients import TimeoutError as ClientTimeout
from judgeflow.clients.base import error_for_status
from judgeflow.judging.live import LiveStats, failure_status, judge_live, judge_live_sync
from judgeflow.judging.records import FAILURE_STATUSES, JudgmentSink, read_judgments
from judgeflow.schemas import content_hash
from judgeflow.simulator import Simulator, expected_preference, expected_score
from judgeflow.simulator.judge import UNPARSEABLE_TEXT
from judgeflow.specs import JudgeSpec, expand_requests
from tests.fixtures.simulator import clean_simulator

KEY = "sk-live-test-KEY-9876543210"


@pytest.fixture
def clean_sim(module_simulator: Simulator) -> Simulator:
    return clean_simulator(module_simulator, retry_after_s=0.05)


def make_rows(n: int, tag: str = "") -> pl.DataFrame:
    instructions = [f"Explain topic {tag}{i} in one sentence." for i in range(n)]
    responses = [[f"A short answer about {tag}{i}.", f"A longer, more careful answer about {tag}{i}."] for i in range(n)]
    return pl.DataFrame(
        {
            "row_id": [f"r{tag}{i}" for i in range(n)],
            "instruction": instructions,
            "responses": responses,
            "reference": [None] * n,
            "content_hash": [content_hash(x, r, None) for x, r in zip(instructions, responses, strict=True)],
        },
        schema_overrides={"reference": pl.String},
    )


def run_live(spec: JudgeSpec, rows: pl.DataFrame, out: Path, **kwargs: object) -> tuple[LiveStats, pl.DataFrame, pl.DataFrame]:
    requests = expand_requests(rows, spec)
    with JudgmentSink(out) as sink:
        stats = asyncio.run(judge_live(spec, rows, requests, sink, api_key=KEY, **kwargs))  # type: ignore[arg-type]
    return stats, requests, read_judgments(out).collect()


def assert_exactly_once(requests: pl.DataFrame, judged: pl.DataFrame) -> None:
    assert judged.height == requests.height
    assert judged["request_id"].n_unique() == judged.height
    assert set(judged["request_id"]) == set(requests["request_id"])
    failed_without_reason = judged.filter((pl.col("status") != "ok") & pl.col("error").is_null())
    assert failed_without_reason.height == 0
    assert set(judged["status"]) <= {"ok", *FAILURE_STATUSES}


def expected_verdicts(rows: pl.DataFrame, judged: pl.DataFrame) -> tuple[list[str | None], list[str | None]]:
    """(verdicts judgeflow recorded, what the simulator's judge says), per pairwise record."""
    texts = dict(zip(rows["row_id"], rows["responses"].to_list(), strict=True))
    got, want = [], []
    for rec in judged.iter_rows(named=True):
        cands = texts[rec["row_id"]]
        got.append(rec["verdict"])
        want.append(expected_preference(cands[rec["candidate_a"]], cands[rec["candidate_b"]]))
    return got, want


def test_fast_client_thousands_of_rows_with_faults(clean_sim: Simulator, tmp_path: Path) -> None:
    clean_sim.configure(rate_429=0.05, rate_500=0.05)
    rows = make_rows(2000)
    spec = JudgeSpec(name="fast", kind="relative", base_url=clean_sim.openai_base_url, concurrency=64, max_retries=10)
    progress: list[tuple[int, int]] = []
    stats, requests, judged = run_live(spec, rows, tmp_path, on_progress=lambda d, t: progress.append((d, t)))
    assert requests.height == 4000  # 2,000 rows x 1 pair x both orders
    assert_exactly_once(requests, judged)
    assert stats.ok == 4000 and stats.failed == 0
    got, want = expected_verdicts(rows, judged)
    assert got == want
    both = judged.group_by("row_id", "order").agg(pl.col("preferred").first()).pivot("order", index="row_id", values="preferred")
    assert (both["AB"] == both["BA"]).all()  # the simulator's judge is position-consistent
    sim_stats = clean_sim.stats()
    assert sim_stats["successful_answers"] == 4000 and sim_stats["duplicate_successes"] == 0
    assert sim_stats["faults_total"] > 200 and stats.transport_retries == sim_stats["faults_total"]
    assert int(judged["attempts"].sum()) == 4000 + sim_stats["faults_total"]
    assert progress[-1] == (4000, 4000) and len(progress) <= 101
    assert stats.cost_usd == pytest.approx(float(judged["cost_usd"].sum()))
    assert stats.cost_usd == pytest.approx(cost_of(spec, stats.input_tokens, stats.output_tokens))


@pytest.mark.parametrize("transport", ["openai-sdk", "anthropic-sdk", "anthropic-fast"])
def test_sdk_and_anthropic_transports_with_faults(clean_sim: Simulator, tmp_path: Path, transport: str) -> None:
    clean_sim.configure(rate_429=0.04, rate_500=0.03, rate_529=0.03)
    rows = make_rows(300, tag=transport)
    if transport == "openai-sdk":
        spec = JudgeSpec(name="sdk", transport="sdk", base_url=clean_sim.openai_base_url, max_retries=10)
    else:
        spec = JudgeSpec(
            name="claude", provider="anthropic", model="claude-3-5-haiku", base_url=clean_sim.anthropic_base_url,
            transport="sdk" if transport == "anthropic-sdk" else "fast", max_retries=10,
        )
    stats, requests, judged = run_live(spec, rows, tmp_path)
    assert requests.height == 600  # absolute: one request per candidate
    assert_exactly_once(requests, judged)
    assert stats.ok == 600
    texts = dict(zip(rows["row_id"], rows["responses"].to_list(), strict=True))
    want = [float(expected_score(texts[r][a])) for r, a in zip(judged["row_id"], judged["candidate_a"], strict=True)]
    assert judged["score"].to_list() == want
    sim_stats = clean_sim.stats()
    assert sim_stats["successful_answers"] == 600 and sim_stats["faults_total"] > 0
    assert stats.transport_retries == sim_stats["faults_total"]


async def test_sdk_clients_are_wrapped_with_the_spec_policy(clean_sim: Simulator, tmp_path: Path) -> None:
    """A raw transport handed in gets the spec's retries; the caller keeps (and closes) it."""
    clean_sim.configure(rate_500=0.2)
    rows = make_rows(50, tag="wrap")
    spec = JudgeSpec(name="w", base_url=clean_sim.openai_base_url, max_retries=10)
    requests = expand_requests(rows, spec)
    client = SDKOpenAIClient(model=spec.model, api_key=KEY, base_url=clean_sim.openai_base_url)
    with JudgmentSink(tmp_path) as sink:
        stats = await judge_live(spec, rows, requests, sink, client=client)
    assert stats.ok == requests.height and stats.transport_retries > 0
    assert stats.transport_retries == clean_sim.stats()["faults"]["500"]
    clean_sim.configure(rate_500=0.0)
    still_open = await client.complete(None, "still usable?", sampling=spec.sampling)
    assert still_open.text
    await client.aclose()


def test_parse_failures_are_re_asked_only_for_the_failed_items(clean_sim: Simulator, tmp_path: Path) -> None:
    clean_sim.configure(rate_unparseable=0.3)
    rows = make_rows(250, tag="parse")
    spec = JudgeSpec(name="p", kind="absolute", base_url=clean_sim.openai_base_url, max_parse_retries=3)
    stats, requests, judged = run_live(spec, rows, tmp_path)
    assert_exactly_once(requests, judged)
    sim_stats = clean_sim.stats()
    unparseable = sim_stats["faults"]["unparseable"]
    assert stats.parse_retries > 50
    assert unparseable == stats.parse_retries + stats.parse_failures
    assert sim_stats["successful_answers"] == requests.height + stats.parse_retries  # only failures re-asked
    ok = judged.filter(pl.col("status") == "ok")
    texts = dict(zip(rows["row_id"], rows["responses"].to_list(), strict=True))
    assert ok["score"].to_list() == [float(expected_score(texts[r][a])) for r, a in zip(ok["row_id"], ok["candidate_a"], strict=True)]
    assert int(judged["attempts"].sum()) == requests.height + stats.parse_retries


def test_always_unparseable_fails_with_raw_output(clean_sim: Simulator, tmp_path: Path) -> None:
    clean_sim.configure(rate_unparseable=1.0)
    rows = make_rows(25, tag="never")
    spec = JudgeSpec(name="n", kind="relative", base_url=clean_sim.openai_base_url, max_parse_retries=2)
    stats, requests, judged = run_live(spec, rows, tmp_path)
    assert_exactly_once(requests, judged)
    assert stats.failed == 50 and stats.parse_failures == 50 and stats.parse_retries == 100
    assert (judged["status"] == "failed").all()
    assert (judged["raw_output"] == UNPARSEABLE_TEXT).all()
    assert judged["error"].str.starts_with("unparseable after 3 replies").all()
    assert (judged["attempts"] == 3).all() and judged["verdict"].is_null().all()
    assert clean_sim.stats()["successful_answers"] == 150


def test_missing_key_records_every_request_as_error_and_sends_nothing(
    clean_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hosted OpenAI without its key: each request says which variable to set, none is sent,
    and the store asks them all again once the key is there (issue 13 item 7)."""
    monkeypatch.delenv("JF_UNSET_KEY", raising=False)
    rows = make_rows(5, tag="nokey")
    spec = JudgeSpec(name="nokey", kind="absolute", api_key_env="JF_UNSET_KEY")
    requests = expand_requests(rows, spec)
    with JudgmentSink(tmp_path) as sink:
        stats = asyncio.run(judge_live(spec, rows, requests, sink))
    judged = read_judgments(tmp_path).collect()
    assert_exactly_once(requests, judged)
    assert stats.failed == 10 and (judged["status"] == "error").all()
    assert judged["error"].str.contains("JF_UNSET_KEY").all()
    assert clean_sim.stats()["chat_completions"] == 0


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (error_for_status(400, "maximum context length is 8192 tokens"), "failed"),
        (error_for_status(413, "request too large"), "failed"),
        (error_for_status(422, "unprocessable"), "failed"),
        (error_for_status(401, "Incorrect API key provided"), "error"),
        (error_for_status(403, "forbidden"), "error"),
        (error_for_status(404, "no such model"), "error"),
        (error_for_status(429, "slow down"), "error"),
        (error_for_status(503, "unavailable"), "error"),
        (PermanentError("reply is not a JSON object"), "error"),
        (ClientTimeout("no reply within 1 s"), "error"),
        (TransientError("connection error: ClientConnectorError"), "error"),
    ],
)
def test_the_client_error_class_decides_final_or_asked_again(error: Exception, status: str) -> None:
    """The request itself refused (prompt too long, invalid for this prompt) is final; auth,
    a wrong URL, overload and broken connections are the infrastructure's and asked again."""
    assert failure_status(error) == status


def test_timeouts_are_retried(clean_sim: Simulator, tmp_path: Path) -> None:
    clean_sim.configure(rate_timeout=0.1, timeout_mode="hold", timeout_hold_s=3.0)
    rows = make_rows(100, tag="slow")
    spec = JudgeSpec(name="t", kind="absolute", base_url=clean_sim.openai_base_url, timeout_s=0.3, max_retries=10)
    stats, requests, judged = run_live(spec, rows, tmp_path)
    assert stats.ok == requests.height
    # every injected timeout was retried; on a loaded box a slow ordinary reply can time out too
    assert stats.transport_retries >= clean_sim.stats()["faults"]["timeout"] > 0


def test_timeouts_exhausting_retries_fail_with_reason(clean_sim: Simulator, tmp_path: Path) -> None:
    clean_sim.configure(rate_timeout=1.0, timeout_mode="hold", timeout_hold_s=3.0)
    rows = make_rows(10, tag="dead")
    spec = JudgeSpec(name="t", kind="absolute", base_url=clean_sim.openai_base_url, timeout_s=0.2, max_retries=1)
    stats, requests, judged = run_live(spec, rows, tmp_path)
    assert_exactly_once(requests, judged)
    assert stats.failed == 20 and stats.transport_failures == 20
    assert judged["error"].str.starts_with("TimeoutError").all() and (judged["attempts"] == 2).all()
    assert (judged["status"] == "error").all()  # infrastructure: the next run asks again


def test_permanent_errors_fail_at_once_without_leaking_the_key(clean_sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clean_sim.configure(require_api_key="another-key")
    rows = make_rows(20, tag="auth")
    spec = JudgeSpec(name="a", kind="absolute", base_url=clean_sim.openai_base_url)
    stats, requests, judged = run_live(spec, rows, tmp_path)
    assert_exactly_once(requests, judged)
    assert stats.failed == 40 and (judged["attempts"] == 1).all()
    assert judged["error"].str.contains("HTTP 401").all()
    assert (judged["status"] == "error").all()  # a wrong key is fixed by the user: asked again
    dumped = judged.write_csv()
    assert KEY not in dumped and KEY not in caplog.text
    assert clean_sim.stats()["unauthorized"] == 40


def test_budget_cap_stops_new_sends_and_keeps_results(clean_sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = make_rows(200, tag="budget")
    # ~250 input tokens a request at $1,000 per 1M input tokens: about $0.25 each; cap $25 (~100).
    spec = JudgeSpec(
        name="b", kind="relative", base_url=clean_sim.openai_base_url, concurrency=8,
        price_input_per_mtok=1000.0, price_output_per_mtok=0.0,
    )
    budget = Budget(25.0)
    # Attach caplog to the module's logger itself: Prefect's logging setup (earlier tests in the
    # session) may stop propagation to the root logger caplog listens on.
    live_logger = logging.getLogger("judgeflow.judging.live")
    caplog.set_level(logging.WARNING, logger=live_logger.name)
    live_logger.addHandler(caplog.handler)
    try:
        stats, requests, judged = run_live(spec, rows, tmp_path, budget=budget)
    finally:
        live_logger.removeHandler(caplog.handler)
    assert_exactly_once(requests, judged)
    ok = judged.filter(pl.col("status") == "ok")
    stopped = judged.filter(pl.col("status") == "not_sent")
    assert 80 <= ok.height < 140 and stopped.height == requests.height - ok.height
    assert (stopped["error"] == "budget cap of $25.00 reached").all()
    assert stats.budget_stopped == stopped.height
    assert float(ok["cost_usd"].sum()) == pytest.approx(budget.spent)
    max_cost = float(ok["cost_usd"].max())
    assert 25.0 <= budget.spent < 25.0 + 8 * max_cost  # only in-flight requests finished past the cap
    sim_stats = clean_sim.stats()
    assert sim_stats["chat_completions"] == ok.height  # nothing sent after the cap except in flight
    assert "budget cap of $25.00 reached" in caplog.text
    # what is done is kept: a second run with a fresh budget judges only the rest
    rest = requests.join(ok.select("request_id"), on="request_id", how="anti")
    with JudgmentSink(tmp_path / "second") as sink:
        again = asyncio.run(judge_live(spec, rows, rest, sink, api_key=KEY))
    assert again.ok == stopped.height


def test_zero_budget_sends_nothing(clean_sim: Simulator, tmp_path: Path) -> None:
    rows = make_rows(10, tag="zero")
    spec = JudgeSpec(name="z", kind="absolute", base_url=clean_sim.openai_base_url)
    stats, requests, judged = run_live(spec, rows, tmp_path, budget=Budget(0.0))
    assert stats.budget_stopped == 20 and clean_sim.stats()["chat_completions"] == 0
    assert_exactly_once(requests, judged)
    assert (judged["status"] == "not_sent").all()


def test_pairwise_json_judge_uses_response_format(clean_sim: Simulator, tmp_path: Path) -> None:
    rows = make_rows(100, tag="json")
    spec = JudgeSpec(name="pj", kind="pairwise", template="pairwise-json", base_url=clean_sim.openai_base_url)
    stats, requests, judged = run_live(spec, rows, tmp_path)
    assert stats.ok == requests.height == 200
    assert judged["raw_output"].str.starts_with("{").all()  # the simulator answers JSON only when asked
    got, want = expected_verdicts(rows, judged)
    assert got == want


def test_rpm_limit_caps_the_live_rate(clean_sim: Simulator, tmp_path: Path) -> None:
    rows = make_rows(20, tag="rpm")
    spec = JudgeSpec(name="r", kind="absolute", base_url=clean_sim.openai_base_url, requests_per_minute=1200)
    started = time.perf_counter()
    stats, requests, _ = run_live(spec, rows, tmp_path)
    elapsed = time.perf_counter() - started
    assert stats.ok == 40
    assert elapsed >= (40 - 20) / 20 - 0.05, elapsed  # 20/s after a 20-request burst


def test_sync_wrapper_inside_a_running_loop(clean_sim: Simulator, tmp_path: Path) -> None:
    rows = make_rows(10, tag="sync")
    spec = JudgeSpec(name="s", kind="absolute", base_url=clean_sim.openai_base_url)
    requests = expand_requests(rows, spec)

    async def inside_loop() -> LiveStats:
        with JudgmentSink(tmp_path) as sink:
            return judge_live_sync(spec, rows, requests, sink, api_key=KEY)

    assert asyncio.run(inside_loop()).ok == 20
    with JudgmentSink(tmp_path / "plain") as sink:
        assert judge_live_sync(spec, rows, requests, sink, api_key=KEY).ok == 20


def test_resilient_client_passed_in_is_used_as_is(clean_sim: Simulator, tmp_path: Path) -> None:
    rows = make_rows(5, tag="res")
    spec = JudgeSpec(name="c", kind="absolute", base_url=clean_sim.openai_base_url)

    async def go() -> tuple[LiveStats, ResilientClient]:
        client = ResilientClient.for_spec(make_transport(spec, KEY), spec)
        with JudgmentSink(tmp_path) as sink:
            stats = await judge_live(spec, rows, expand_requests(rows, spec), sink, client=client)
        again = await client.complete(None, "still open?", sampling=spec.sampling)  # not closed by judge_live
        await client.aclose()
        assert again.text
        return stats, client

    stats, _ = asyncio.run(go())
    assert stats.ok == 10


@pytest.mark.prefect
def test_prefect_task_skips_what_is_already_recorded(clean_sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from tasks.judge_live import judge_chunk_live

    monkeypatch.setenv("JF_SIM_KEY", KEY)
    rows = make_rows(150, tag="task")
    spec = JudgeSpec(name="task", kind="absolute", base_url=clean_sim.openai_base_url, api_key_env="JF_SIM_KEY")
    requests = expand_requests(rows, spec)
    rows_path, first_path, all_path = tmp_path / "rows.parquet", tmp_path / "first.parquet", tmp_path / "all.parquet"
    rows.write_parquet(rows_path)
    requests.head(100).write_parquet(first_path)
    requests.write_parquet(all_path)
    out_dir = tmp_path / "judgments"

    @flow
    def judge_chunks() -> list[dict]:
        first = judge_chunk_live(spec, str(rows_path), str(first_path), str(out_dir))
        second = judge_chunk_live(spec, str(rows_path), str(all_path), str(out_dir))
        third = judge_chunk_live(spec, str(rows_path), str(all_path), str(out_dir), budget_cap_usd=1.0)
        return [first, second, third]

    with prefect_test_harness(server_startup_timeout=90):
        first, second, third = judge_chunks()
    assert first["ok"] == 100 and first["skipped"] == 0
    assert second["ok"] == 200 and second["skipped"] == 100
    assert third["total"] == 0 and third["skipped"] == 300
    judged = read_judgments(out_dir).collect()
    assert_exactly_once(requests, judged)
    assert clean_sim.stats()["successful_answers"] == 300  # nothing judged twice


def test_task_retries_only_infrastructure_errors() -> None:
    from prefect.states import Failed

    from tasks.retries import retry_on_infrastructure as _retry_on_infrastructure

    assert _retry_on_infrastructure(None, None, Failed(data=OSError("disk full"))) is True
    assert _retry_on_infrastructure(None, None, Failed(data=ConnectionResetError())) is True
    assert _retry_on_infrastructure(None, None, Failed(data=ValueError("bad spec"))) is False


def test_a_chunk_run_again_asks_its_infrastructure_failures_again(tmp_path: Path) -> None:
    """The same run id run again (the key fixed) must not skip what its first try recorded as an
    infrastructure failure or as not sent; answers and the judge's own failures are kept."""
    from judgeflow.judging.records import judgment_record
    from tasks.judge_live import chunk_prefix, pending_requests

    spec = JudgeSpec(name="again", kind="absolute")
    requests_path = tmp_path / "work" / "chunks" / "again" / "requests-00000.parquet"
    requests = pl.DataFrame({"request_id": [f"q{i}" for i in range(4)], "row_id": ["x"] * 4,
                             "candidate_a": [0] * 4}, schema_overrides={"candidate_a": pl.Int32})
    out_dir = tmp_path / "store" / "judgments" / "again" / "hash"
    statuses = [("ok", None), ("failed", "unparseable"), ("error", "HTTP 401"), ("not_sent", "budget")]
    with JudgmentSink(out_dir, prefix=chunk_prefix(spec, str(requests_path))) as sink:
        for request, (status, error) in zip(requests.to_dicts(), statuses, strict=True):
            sink.add(judgment_record(spec, request, score=3, error=error, status=status))
    todo, _ = pending_requests(requests, str(out_dir), str(requests_path))
    assert sorted(todo["request_id"]) == ["q2", "q3"]
    todo, _ = pending_requests(requests, str(out_dir), str(requests_path), retry_failed=True)
    assert sorted(todo["request_id"]) == ["q1", "q2", "q3"]
