"""Live judging: send one chunk of requests to an API judge and record every answer.

The hot path of judgeflow, shaped by what costs CPU on a 2-core worker:

* all prompts of the chunk are rendered up front (``render_requests``: polars picks the texts,
  only string formatting runs per item);
* a FIXED pool of ``spec.concurrency`` worker coroutines pulls request indices from one shared
  iterator (a queue without the queue: ``next()`` cannot interleave with an ``await`` on a single
  event loop), so there is no asyncio task, future or queue item per request;
* the client (``judgeflow.clients``) applies rate limits, timeouts and retries per HTTP attempt;
* only a reply that does not parse is asked again, up to ``spec.max_parse_retries`` times, and
  then fails *with its raw output and the parse error*; transport failures after all retries,
  and requests the budget cap stopped, fail with the reason.

Each failure records who failed (``status``, see ``judgeflow.judging.records.FAILURE_STATUSES``):
the judge itself (``failed``: unparseable after the re-asks, or the provider refused this very
request: prompt too long, invalid for this prompt) is final; the infrastructure (``error``: auth,
wrong URL, connection, 5xx/429 after the retries, timeouts, a missing key, a bug here) and the
budget (``not_sent``) are asked again by the next run.

Every request ends in exactly one record written to the sink. ``attempts`` in a record counts
every HTTP attempt made for it (transport retries and parse re-asks together).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from judgeflow.clients import ClientError, JudgeClient, PermanentError, ResilientClient, make_client
from judgeflow.cost import Budget, cost_of, price_for
from judgeflow.judging.records import JudgmentSink, judgment_record
from judgeflow.parsing import ParseError, parse_reply
from judgeflow.prompts import RESPONSE_FORMAT, RenderedPrompt, render_requests
from judgeflow.specs import REQUESTS_SCHEMA, JudgeSpec

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

# Providers whose chat endpoint takes OpenAI's json_schema ``response_format``.
_JSON_SCHEMA_PROVIDERS = frozenset({"openai", "vllm"})


#: HTTP statuses by which the provider refuses this very request (prompt too long, a parameter
#: invalid for this prompt, content refused): asking again cannot help, so the failure is final.
#: Every other client error (401/403 auth, 404 wrong URL or model, 429/5xx after the retries,
#: timeouts, broken connections, malformed replies) belongs to the infrastructure.
REQUEST_REFUSED_STATUSES = frozenset({400, 413, 422})


def failure_status(exc: BaseException) -> str:
    """``failed`` (final) when the provider refused the request itself, else ``error`` (asked
    again next run). Decided by the client's error class and HTTP status, never by its text."""
    if isinstance(exc, PermanentError) and exc.status in REQUEST_REFUSED_STATUSES:
        return "failed"
    return "error"


@dataclass(slots=True)
class LiveStats:
    """What one ``judge_live`` call did. ``as_dict()`` is what tasks return and log."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    parse_retries: int = 0
    parse_failures: int = 0
    transport_failures: int = 0
    transport_retries: int = 0
    budget_stopped: int = 0
    http_attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.total / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows_per_s"] = round(self.rows_per_s, 2)
        return out


def response_format_for(spec: JudgeSpec) -> dict[str, Any] | None:
    """The json_schema ``response_format`` for pairwise-JSON judges on OpenAI-style endpoints."""
    if spec.template == "pairwise-json" and spec.provider in _JSON_SCHEMA_PROVIDERS:
        return RESPONSE_FORMAT
    return None


class _Run:
    """State shared by the workers of one ``judge_live`` call (single event loop, no locks)."""

    def __init__(
        self,
        spec: JudgeSpec,
        requests: list[dict[str, Any]],
        prompts: list[RenderedPrompt],
        sink: JudgmentSink,
        client: ResilientClient,
        budget: Budget | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.spec = spec
        self.requests = requests
        self.prompts = prompts
        self.sink = sink
        self.client = client
        self.budget = budget
        self.on_progress = on_progress
        self.progress_every = max(1, len(requests) // 100)
        self.response_format = response_format_for(spec)
        self.spec_hash = spec.spec_hash()
        self.stats = LiveStats(total=len(requests))
        self.done = 0
        self.next_index = iter(range(len(requests))).__next__
        self._budget_logged = False
        self.slots: SlotBlocks | None = None

    def _budget_stops(self) -> bool:
        if self.budget is None or not self.budget.exhausted:
            return False
        if not self._budget_logged:
            self._budget_logged = True
            log.warning(
                "judge %r: %s (spent $%.4f); not sending the remaining requests, recording them as not sent (asked again next run)",
                self.spec.name, self.budget.reason, self.budget.spent,
            )
        return True

    def _finish(self, record: dict[str, Any]) -> None:
        self.sink.add(record)
        stats = self.stats
        if record["status"] == "ok":
            stats.ok += 1
        else:
            stats.failed += 1
        self.done += 1
        if self.on_progress is not None and (self.done % self.progress_every == 0 or self.done == stats.total):
            self.on_progress(self.done, stats.total)

    async def judge_one(self, index: int) -> dict[str, Any]:
        """Ask until the reply parses (or the retries, the transport or the budget give out)."""
        spec, stats, request = self.spec, self.stats, self.requests[index]
        prompt = self.prompts[index]
        tokens_in = tokens_out = attempts = asks = 0
        cost = 0.0
        last_text: str | None = None
        last_error: str | None = None

        def failed(error: str, raw: str | None, status: str) -> dict[str, Any]:
            return judgment_record(
                spec, request, raw_output=raw, error=error, attempts=attempts,
                input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost,
                template_hash=prompt.template_hash, spec_hash=self.spec_hash, status=status,
            )

        while True:
            if self._budget_stops():
                stats.budget_stopped += 1
                reason = self.budget.reason if self.budget is not None else "budget"
                if last_error is not None:
                    reason = f"{reason} (last reply did not parse: {last_error})"
                return failed(reason, last_text, "not_sent")
            asks += 1
            if self.slots is not None:
                await self.slots.take()
            try:
                completion = await self.client.complete(
                    prompt.system, prompt.user, sampling=spec.sampling, response_format=self.response_format
                )
            except ClientError as exc:
                attempts += exc.attempts
                stats.http_attempts += exc.attempts
                stats.transport_failures += 1
                return failed(f"{type(exc).__name__}: {exc}", last_text, failure_status(exc))
            attempts += completion.attempts
            stats.http_attempts += completion.attempts
            tokens_in += completion.input_tokens
            tokens_out += completion.output_tokens
            stats.input_tokens += completion.input_tokens
            stats.output_tokens += completion.output_tokens
            spent = cost_of(spec, completion.input_tokens, completion.output_tokens, batch=False)
            cost += spent
            stats.cost_usd += spent
            if self.budget is not None:
                self.budget.add(spent)
            last_text = completion.text
            try:
                parsed = parse_reply(spec, completion.text)
            except ParseError as exc:
                last_error = str(exc)
                if asks <= spec.max_parse_retries:
                    stats.parse_retries += 1
                    continue
                stats.parse_failures += 1
                return failed(f"unparseable after {asks} replies: {last_error}", completion.text, "failed")
            return judgment_record(
                spec, request, score=parsed.score, verdict=parsed.verdict, feedback=parsed.feedback,
                raw_output=completion.text, attempts=attempts, input_tokens=tokens_in,
                output_tokens=tokens_out, cost_usd=cost, template_hash=prompt.template_hash,
                spec_hash=self.spec_hash,
            )

    async def worker(self) -> None:
        next_index = self.next_index
        while True:
            try:
                index = next_index()
            except StopIteration:
                return
            try:
                record = await self.judge_one(index)
            except Exception as exc:  # a bug must not lose the request: record it, keep going
                log.exception("judge %r: internal error on request %s", self.spec.name, self.requests[index]["request_id"])
                record = judgment_record(
                    self.spec, self.requests[index], error=f"internal error: {type(exc).__name__}: {exc}",
                    template_hash=self.prompts[index].template_hash, spec_hash=self.spec_hash,
                    status="error",  # a bug of ours, not the judge's answer: asked again next run
                )
            self._finish(record)


SlotAcquirer = Callable[[int], Awaitable[Any]]


class SlotBlocks:
    """Takes request slots from an outside limiter in blocks, one call per ``block`` requests.

    The outside limiter is a Prefect global concurrency limit (``rate_limit("openai-rpm",
    occupy=n)``) shared by every flow run, so all builds together stay under a provider's rate
    limit; asking it once per request would cost an API call per request, so slots are taken in
    blocks and handed out locally.
    """

    def __init__(self, acquire: SlotAcquirer, block: int = 50) -> None:
        self._acquire = acquire
        self._block = max(1, block)
        self._left = 0
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            if self._left == 0:
                await self._acquire(self._block)
                self._left = self._block
            self._left -= 1


async def judge_live(
    spec: JudgeSpec,
    rows: pl.DataFrame,
    requests: pl.DataFrame,
    sink: JudgmentSink,
    *,
    client: JudgeClient | None = None,
    budget: Budget | None = None,
    on_progress: ProgressCallback | None = None,
    api_key: str | None = None,
    slots: SlotBlocks | None = None,
) -> LiveStats:
    """Judge every request of ``requests`` (rows of ``REQUESTS_SCHEMA``) and write one record each.

    ``client``: any ``JudgeClient``; it is wrapped with the spec's limits and retry policy unless
    it already is a ``ResilientClient``, and the caller keeps ownership (it is not closed). When
    None, ``make_client(spec, api_key)`` builds one and it is closed at the end.
    ``on_progress(done, total)`` is called about every 1% of the requests and at the end.
    The sink is not closed here: the caller owns it (and may flush between chunks).
    """
    started = time.perf_counter()
    if requests.height == 0:
        return LiveStats()
    prompts = render_requests(spec, rows, requests)
    request_dicts = requests.select(list(REQUESTS_SCHEMA)).to_dicts()
    owned = client is None
    try:
        inner = client if client is not None else make_client(spec, api_key)
    except ClientError as exc:  # no key: every request fails with what to set, nothing is sent
        log.error("judge %r: %s; recording its %d requests as not judged", spec.name, exc, requests.height)
        stats = LiveStats(total=requests.height, failed=requests.height, transport_failures=requests.height)
        for request, prompt in zip(request_dicts, prompts, strict=True):
            sink.add(judgment_record(
                spec, request, error=f"{type(exc).__name__}: {exc}", attempts=0,
                template_hash=prompt.template_hash, spec_hash=spec.spec_hash(), status="error",
            ))
        stats.elapsed_s = time.perf_counter() - started
        if on_progress is not None:
            on_progress(stats.total, stats.total)
        return stats
    resilient = inner if isinstance(inner, ResilientClient) else ResilientClient.for_spec(inner, spec)
    retries_before = resilient.stats.retries
    if budget is not None and budget.cap_usd is not None and price_for(spec) is None:
        log.warning(
            "judge %r: no price known for model %r; the budget cap cannot see its cost "
            "(set price_input_per_mtok / price_output_per_mtok)", spec.name, spec.model,
        )
    run = _Run(spec, request_dicts, prompts, sink, resilient, budget, on_progress)
    run.slots = slots
    workers = max(1, min(spec.concurrency, len(request_dicts)))
    try:
        await asyncio.gather(*(run.worker() for _ in range(workers)))
    finally:
        if owned:
            await resilient.aclose()
    run.stats.transport_retries = resilient.stats.retries - retries_before
    run.stats.elapsed_s = time.perf_counter() - started
    log.info(
        "judge %r: %d requests, %d ok, %d failed (%d parse re-asks, %d transport retries, "
        "%d stopped by budget), $%.4f, %.1f rows/s",
        spec.name, run.stats.total, run.stats.ok, run.stats.failed, run.stats.parse_retries,
        run.stats.transport_retries, run.stats.budget_stopped, run.stats.cost_usd, run.stats.rows_per_s,
    )
    return run.stats


def judge_live_sync(
    spec: JudgeSpec,
    rows: pl.DataFrame,
    requests: pl.DataFrame,
    sink: JudgmentSink,
    *,
    budget: Budget | None = None,
    on_progress: ProgressCallback | None = None,
    api_key: str | None = None,
    slots: SlotBlocks | None = None,
) -> LiveStats:
    """``judge_live`` from synchronous code (a Prefect task thread, a script).

    Runs a fresh event loop; if this thread already runs one, the work goes to a helper thread
    (a loop cannot be nested). The client is always built here, inside that loop, because an
    aiohttp session is bound to the loop that created it.
    """
    coro_args: Mapping[str, Any] = {
        "budget": budget, "on_progress": on_progress, "api_key": api_key, "slots": slots,
    }

    def run() -> LiveStats:
        return asyncio.run(judge_live(spec, rows, requests, sink, **coro_args))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()
