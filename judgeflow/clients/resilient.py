"""A ``JudgeClient`` wrapper that adds the spec's rate limits, timeout and retry policy.

Transports (fast or SDK) make exactly one attempt; this layer decides when to try again and
when to wait, so every transport behaves the same and is tested the same way.
"""

from __future__ import annotations

from typing import Any

from judgeflow.clients.base import ClientError, Completion, JudgeClient
from judgeflow.clients.limiter import HeaderPacer, PaceTicket, RateLimiter, estimate_tokens, pacer_for
from judgeflow.clients.retry import RetryPolicy, RetryStats, call_with_retries
from judgeflow.specs import JudgeSpec, Sampling


def policy_for(spec: JudgeSpec) -> RetryPolicy:
    """The retry policy a spec asks for: ``max_retries`` retries, ``timeout_s`` per attempt."""
    return RetryPolicy(max_retries=spec.max_retries, timeout_s=spec.timeout_s)


def pacer_of(inner: JudgeClient) -> HeaderPacer | None:
    """The shared pacer of the account ``inner`` talks to, when it reads rate-limit headers
    (the lean clients say which account with ``rate_account``)."""
    account = getattr(inner, "rate_account", None)
    return pacer_for(*account) if account is not None else None


class ResilientClient:
    """``inner`` + RPM/TPM limiter + per-attempt timeout + retries with backoff and Retry-After.

    ``pacer`` paces to the limits the provider announces in its replies (one per account in the
    process, shared by every chunk); the configured ``limiter`` stays an upper bound on top.

    ``stats`` sums retries and sleeps over the client's life; ``limiter.waited_s`` the time spent
    throttled. The returned ``Completion.attempts`` counts HTTP attempts for that request.
    """

    def __init__(
        self,
        inner: JudgeClient,
        *,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        pacer: HeaderPacer | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.limiter = limiter or RateLimiter()
        self.pacer = pacer
        self.stats = RetryStats()

    @classmethod
    def for_spec(cls, inner: JudgeClient, spec: JudgeSpec) -> ResilientClient:
        return cls(
            inner,
            policy=policy_for(spec),
            limiter=RateLimiter(spec.requests_per_minute, spec.tokens_per_minute),
            pacer=pacer_of(inner),
        )

    def __repr__(self) -> str:
        return f"ResilientClient({self.inner!r})"

    async def complete(
        self,
        system: str | None,
        user: str,
        *,
        sampling: Sampling,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        limiter, pacer = self.limiter, self.pacer
        estimate = estimate_tokens(system, user, sampling.max_tokens) if limiter.tpm is not None else 0
        if pacer is None:
            async def attempt() -> Completion:
                return await self.inner.complete(system, user, sampling=sampling, response_format=response_format)

            before = (lambda: limiter.acquire(estimate)) if limiter.active else None
        else:
            pace_tokens = estimate or estimate_tokens(system, user, sampling.max_tokens)
            ticket: PaceTicket | None = None

            async def before() -> None:  # waits outside the per-attempt timeout
                nonlocal ticket
                if limiter.active:
                    await limiter.acquire(estimate)
                ticket = await pacer.acquire(pace_tokens)

            async def attempt() -> Completion:
                rate = None
                try:
                    done = await self.inner.complete(system, user, sampling=sampling, response_format=response_format)
                    rate = done.rate_limits
                    return done
                except ClientError as exc:
                    rate = exc.rate_limits
                    raise
                finally:  # once per sent request, timeouts included (no headers then)
                    pacer.observe(ticket, rate)

        completion, attempts = await call_with_retries(attempt, self.policy, self.stats, before_attempt=before)
        completion.attempts = attempts
        if estimate:
            limiter.settle(estimate, completion.input_tokens + completion.output_tokens)
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()
