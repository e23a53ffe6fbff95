"""Judge clients over real HTTP to the provider simulator: fast and SDK transports, the error
mapping, Retry-After, timeouts, the retry policy and the rate limiter."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest

from judgeflow.clients import (
    FastAnthropicClient,
    FastOpenAIClient,
    PermanentError,
    RateLimiter,
    ResilientClient,
    RetryPolicy,
    SDKAnthropicClient,
    SDKOpenAIClient,
    TimeoutError,
    TokenBucket,
    TransientError,
    make_client,
    make_transport,
)
from judgeflow.clients.base import parse_retry_after, redact
from judgeflow.prompts import render
from judgeflow.simulator import Simulator, expected_score
from judgeflow.specs import JudgeSpec, Sampling
from tests.fixtures.simulator import clean_simulator

SECRET = "sk-test-SECRETKEY-0123456789"


@pytest.fixture
def clean_sim(module_simulator: Simulator) -> Simulator:
    return clean_simulator(module_simulator, retry_after_s=0.2)


def _prompt(response: str) -> tuple[str | None, str]:
    spec = JudgeSpec(name="abs", kind="absolute")
    rendered = render(spec, instruction="Name a prime number.", response_a=response)
    return rendered.system, rendered.user


def _transports(sim: Simulator, **kw: float) -> list:
    return [
        FastOpenAIClient(model="gpt-4o-mini", api_key=SECRET, base_url=sim.openai_base_url, **kw),
        SDKOpenAIClient(model="gpt-4o-mini", api_key=SECRET, base_url=sim.openai_base_url, **kw),
        FastAnthropicClient(model="claude-3-5-haiku", api_key=SECRET, base_url=sim.anthropic_base_url, **kw),
        SDKAnthropicClient(model="claude-3-5-haiku", api_key=SECRET, base_url=sim.anthropic_base_url, **kw),
    ]


async def test_every_transport_returns_the_simulated_verdict(clean_sim: Simulator) -> None:
    response = "Seven is a prime number."
    system, user = _prompt(response)
    for client in _transports(clean_sim):
        try:
            done = await client.complete(system, user, sampling=Sampling())
        finally:
            await client.aclose()
        assert done.text.rstrip().endswith(f"[RESULT] {expected_score(response)}"), (client, done.text)
        assert done.input_tokens > 50 and done.output_tokens > 0
        assert done.finish_reason in ("stop", "end_turn")
        assert done.request_id
    stats = clean_sim.stats()
    assert stats["chat_completions"] == 2 and stats["messages"] == 2 and stats["bad_requests"] == 0


async def test_status_errors_are_classified_and_carry_retry_after(clean_sim: Simulator) -> None:
    clean_sim.configure(rate_429=1.0, retry_after_s=0.4)
    system, user = _prompt("Two.")
    for client in _transports(clean_sim):
        with pytest.raises(TransientError) as info:
            await client.complete(system, user, sampling=Sampling())
        await client.aclose()
        assert info.value.status == 429
        assert info.value.retry_after == pytest.approx(0.4)  # retry-after-ms wins over retry-after
    clean_sim.configure(rate_429=0.0, rate_529=1.0)
    for client in _transports(clean_sim):
        with pytest.raises(TransientError) as info:
            await client.complete(system, user, sampling=Sampling())
        await client.aclose()
        assert info.value.status in (503, 529)


async def test_auth_failure_is_permanent_and_never_shows_the_key(clean_sim: Simulator) -> None:
    clean_sim.configure(require_api_key="the-right-key")
    system, user = _prompt("Three.")
    for client in _transports(clean_sim):
        assert SECRET not in repr(client)
        with pytest.raises(PermanentError) as info:
            await client.complete(system, user, sampling=Sampling())
        await client.aclose()
        assert info.value.status == 401
        assert SECRET not in str(info.value) and "SECRETKEY" not in str(info.value)


async def test_retry_after_is_honoured_and_counted(clean_sim: Simulator) -> None:
    clean_sim.configure(rate_429=1.0, retry_after_s=0.3)
    system, user = _prompt("Five.")
    for inner in _transports(clean_sim)[:2]:
        client = ResilientClient(inner, policy=RetryPolicy(max_retries=2, base_delay_s=0.0))
        started = time.perf_counter()
        with pytest.raises(TransientError) as info:
            await client.complete(system, user, sampling=Sampling())
        waited = time.perf_counter() - started
        await client.aclose()
        assert info.value.attempts == 3
        assert client.stats.retries == 2 and client.stats.retry_after_honoured == 2
        assert waited >= 0.6 - 0.01, waited  # two server-requested waits of 0.3 s
    assert clean_sim.stats()["faults"]["429"] == 6


async def test_retries_recover_from_transient_faults(clean_sim: Simulator) -> None:
    clean_sim.configure(rate_500=0.5, retry_after_s=0.0)
    client = ResilientClient(
        FastOpenAIClient(model="m", api_key=SECRET, base_url=clean_sim.openai_base_url),
        policy=RetryPolicy(max_retries=8, base_delay_s=0.01, max_delay_s=0.05),
    )
    results = await asyncio.gather(*(client.complete(*_prompt(f"Answer {i}"), sampling=Sampling()) for i in range(40)))
    await client.aclose()
    assert all("[RESULT]" in r.text for r in results)
    faults = clean_sim.stats()["faults"].get("500", 0)
    assert faults > 0 and client.stats.retries == faults
    assert sum(r.attempts for r in results) == 40 + faults


async def test_server_asking_for_a_long_wait_fails_fast(clean_sim: Simulator) -> None:
    clean_sim.configure(rate_429=1.0, retry_after_s=1.0)
    client = ResilientClient(
        FastOpenAIClient(model="m", api_key=SECRET, base_url=clean_sim.openai_base_url),
        policy=RetryPolicy(max_retries=5, max_retry_after_s=0.5),
    )
    started = time.perf_counter()
    with pytest.raises(TransientError, match="asked to wait"):
        await client.complete(*_prompt("x"), sampling=Sampling())
    assert time.perf_counter() - started < 0.95  # did not sleep the 1 s the server asked for
    await client.aclose()


async def test_permanent_errors_are_not_retried(clean_sim: Simulator) -> None:
    clean_sim.configure(require_api_key="other")
    client = ResilientClient(
        SDKOpenAIClient(model="m", api_key=SECRET, base_url=clean_sim.openai_base_url),
        policy=RetryPolicy(max_retries=5),
    )
    with pytest.raises(PermanentError) as info:
        await client.complete(*_prompt("x"), sampling=Sampling())
    await client.aclose()
    assert info.value.attempts == 1 and client.stats.retries == 0
    assert clean_sim.stats()["unauthorized"] == 1


async def test_timeouts_are_retried_then_fail(clean_sim: Simulator) -> None:
    clean_sim.configure(rate_timeout=1.0, timeout_mode="hold", timeout_hold_s=3.0)
    for inner in (
        FastOpenAIClient(model="m", api_key=SECRET, base_url=clean_sim.openai_base_url, timeout_s=0.3),
        SDKAnthropicClient(model="m", api_key=SECRET, base_url=clean_sim.anthropic_base_url, timeout_s=0.3),
    ):
        client = ResilientClient(inner, policy=RetryPolicy(max_retries=1, base_delay_s=0.0, timeout_s=0.3))
        started = time.perf_counter()
        with pytest.raises(TimeoutError) as info:
            await client.complete(*_prompt("slow"), sampling=Sampling())
        elapsed = time.perf_counter() - started
        await client.aclose()
        assert info.value.attempts == 2 and client.stats.timeouts == 2
        assert elapsed > 0.55, elapsed  # two 0.3 s timeouts really waited


async def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = FastOpenAIClient(model="m", api_key=SECRET, base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(TransientError, match="connection error"):
        await client.complete(None, "hi", sampling=Sampling())
    await client.aclose()


async def test_rpm_limiter_caps_the_rate(clean_sim: Simulator) -> None:
    # 1,200 rpm = 20 requests/s with a 1 s burst of 20: 50 requests need >= (50 - 20) / 20 s.
    client = ResilientClient(
        FastOpenAIClient(model="m", api_key=SECRET, base_url=clean_sim.openai_base_url, concurrency=50),
        limiter=RateLimiter(requests_per_minute=1200),
    )
    started = time.perf_counter()
    await asyncio.gather(*(client.complete(*_prompt(f"r{i}"), sampling=Sampling()) for i in range(50)))
    elapsed = time.perf_counter() - started
    await client.aclose()
    assert elapsed >= 1.45, elapsed
    assert clean_sim.stats()["chat_completions"] == 50


def test_token_bucket_reserves_and_refunds() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, 5.0, clock=lambda: now[0])
    assert [bucket.reserve(1) for _ in range(5)] == [0.0] * 5
    assert bucket.reserve(1) == pytest.approx(0.1)
    assert bucket.reserve(1) == pytest.approx(0.2)  # waiters queue up behind the deficit
    now[0] = 1.0
    assert bucket.reserve(1) == 0.0
    bucket.adjust(-100)  # refund is capped at the capacity
    assert bucket._tokens == pytest.approx(5.0)
    assert bucket.reserve(50) == pytest.approx(0.0)  # larger than the bucket: clipped to it


async def test_tpm_limiter_settles_with_real_usage() -> None:
    limiter = RateLimiter(tokens_per_minute=60_000)  # 1,000 tokens/s
    await limiter.acquire(900)
    limiter.settle(900, 100)  # 800 given back
    await limiter.acquire(900)
    assert limiter.waited_s == 0  # the refund made room: no wait
    await limiter.acquire(900)
    assert limiter.waited_s > 0.5


def test_backoff_full_jitter_bounds() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0)
    rng = random.Random(1)
    for retry in range(1, 10):
        delays = [policy.backoff(retry, None, rng) for _ in range(200)]
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spans the range
    assert policy.backoff(3, 1.25) == 1.25


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert 0 < parse_retry_after({"retry-after": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))}) <= 31
    assert parse_retry_after({}) is None
    assert redact(f"Incorrect API key provided: {SECRET[:12]}***", None) == "Incorrect API key provided: [redacted]"


def test_make_client_picks_transport_and_reads_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JF_TEST_KEY", SECRET)
    fast = make_transport(JudgeSpec(name="a", api_key_env="JF_TEST_KEY"))
    assert isinstance(fast, FastOpenAIClient) and fast._api_key == SECRET
    assert SECRET not in repr(fast)
    sdk = make_transport(JudgeSpec(name="a", transport="sdk", api_key_env="JF_TEST_KEY"))
    assert isinstance(sdk, SDKOpenAIClient)
    claude = make_transport(JudgeSpec(name="c", provider="anthropic", model="claude-3-5-haiku", api_key_env="JF_TEST_KEY"))
    assert isinstance(claude, FastAnthropicClient)
    vllm = make_transport(JudgeSpec(name="v", provider="vllm", base_url="http://127.0.0.1:1/v1"))
    assert isinstance(vllm, FastOpenAIClient) and vllm.vllm_extras
    wrapped = make_client(JudgeSpec(name="a", api_key_env="JF_TEST_KEY", requests_per_minute=60, max_retries=3))
    assert isinstance(wrapped, ResilientClient) and wrapped.policy.max_retries == 3 and wrapped.limiter.rpm
    monkeypatch.delenv("JF_TEST_KEY")
    with pytest.raises(PermanentError, match="JF_TEST_KEY"):
        make_transport(JudgeSpec(name="a", api_key_env="JF_TEST_KEY"))
    with pytest.raises(ValueError, match="GPU"):
        make_transport(JudgeSpec(name="p", provider="pairrm", kind="relative", mode="gpu"))


async def test_vllm_extras_are_sent_and_accepted(clean_sim: Simulator) -> None:
    """vLLM gets repetition_penalty/top_p/max_tokens; api.openai.com gets max_completion_tokens."""
    from judgeflow.clients.fast_openai import openai_body

    vllm = openai_body("m", None, "u", Sampling(), None, vllm_extras=True)
    assert vllm["repetition_penalty"] == 1.03 and vllm["top_p"] == 0.9 and vllm["max_tokens"] == 1024
    hosted = openai_body("m", "s", "u", Sampling(), None, vllm_extras=False)
    assert "repetition_penalty" not in hosted and hosted["max_completion_tokens"] == 1024
    for vllm_client in (
        FastOpenAIClient(model="m", api_key="EMPTY", base_url=clean_sim.openai_base_url, vllm_extras=True),
        SDKOpenAIClient(model="m", api_key="EMPTY", base_url=clean_sim.openai_base_url, vllm_extras=True),
    ):
        try:
            done = await vllm_client.complete(*_prompt("Eleven."), sampling=Sampling())
        finally:
            await vllm_client.aclose()
        assert done.text.rstrip().endswith(f"[RESULT] {expected_score('Eleven.')}")
    assert clean_sim.stats()["bad_requests"] == 0


async def test_a_200_reply_without_choices_is_transient_on_every_transport(clean_sim: Simulator) -> None:
    # A gateway answering 200 with an error object: no choices / content blocks. Each transport
    # says "try again" (a NameError here once became an unretried internal error).
    clean_sim.configure(rate_200_error=1.0)
    system, user = _prompt("Eleven.")
    for client in _transports(clean_sim):
        with pytest.raises(TransientError, match="malformed reply"):
            await client.complete(system, user, sampling=Sampling())
        await client.aclose()
    assert clean_sim.stats()["faults"]["error_200"] == 4


async def test_a_200_reply_without_choices_is_retried(clean_sim: Simulator) -> None:
    clean_sim.configure(rate_200_error=0.5)
    for inner in (FastOpenAIClient(model="m", api_key=SECRET, base_url=clean_sim.openai_base_url),
                  FastAnthropicClient(model="m", api_key=SECRET, base_url=clean_sim.anthropic_base_url)):
        client = ResilientClient(inner, policy=RetryPolicy(max_retries=10, base_delay_s=0.0))
        results = await asyncio.gather(*(client.complete(*_prompt(f"Answer {i}"), sampling=Sampling())
                                         for i in range(20)))
        await client.aclose()
        assert all("[RESULT]" in r.text for r in results)
        assert client.stats.retries > 0 and sum(r.attempts for r in results) == 20 + client.stats.retries


GATEWAY_KEY = "gwtoken-ECHOED-7f3a9c0e1b2d4"  # not shaped like sk-...: only the exact key redacts it


def _gateway_transports(sim: Simulator) -> list:
    return [
        FastOpenAIClient(model="m", api_key=GATEWAY_KEY, base_url=sim.openai_base_url),
        SDKOpenAIClient(model="m", api_key=GATEWAY_KEY, base_url=sim.openai_base_url),
        FastAnthropicClient(model="m", api_key=GATEWAY_KEY, base_url=sim.anthropic_base_url),
        SDKAnthropicClient(model="m", api_key=GATEWAY_KEY, base_url=sim.anthropic_base_url),
    ]


@pytest.mark.parametrize("fault", [{"require_api_key": "the-right-key"}, {"rate_500": 1.0}])
async def test_an_echoed_key_never_leaves_a_client(clean_sim: Simulator, fault: dict) -> None:
    import traceback

    clean_sim.configure(echo_api_key=True, **fault)
    for inner in _gateway_transports(clean_sim):
        client = ResilientClient(inner, policy=RetryPolicy(max_retries=1, base_delay_s=0.0))
        with pytest.raises(PermanentError if "require_api_key" in fault else TransientError) as info:
            await client.complete(*_prompt("x"), sampling=Sampling())
        await client.aclose()
        shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
        assert GATEWAY_KEY not in shown, (inner, shown[-600:])
        assert "[redacted]" in str(info.value), str(info.value)
        error = info.value  # the SDK's exception (with the body) is not chained into tracebacks
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert clean_sim.stats()["keys_echoed"] >= 4


def test_remembered_secrets_are_redacted_everywhere() -> None:
    from judgeflow.clients.base import ClientError, remember_secret

    key = "plain-secret-value-0042"
    assert redact(f"bad key {key}") == f"bad key {key}"  # not key-shaped, not yet known
    remember_secret(key)
    remember_secret("EMPTY")  # a placeholder is too short to be redacted by value
    assert redact(f"bad key {key}!") == "bad key [redacted]!"
    assert str(ClientError(f"HTTP 401: {key}")) == "HTTP 401: [redacted]"
    assert redact("EMPTY reply") == "EMPTY reply"


def test_a_key_cut_by_truncation_leaves_no_head_behind() -> None:
    """Error bodies are redacted before they are cut, not after: a cut key cannot be matched."""
    from judgeflow.clients.base import error_for_status
    from judgeflow.clients.pooled import error_message

    for raw in (b"x" * 290 + GATEWAY_KEY.encode(),  # not JSON: the raw body
                b'{"message": "' + b"y" * 280 + GATEWAY_KEY.encode() + b'"}'):
        error = error_for_status(401, error_message(raw), None, secret=GATEWAY_KEY)
        assert GATEWAY_KEY[:10] not in str(error) and "[redacted]" in str(error), str(error)
