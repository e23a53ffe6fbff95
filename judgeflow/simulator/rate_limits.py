"""Per-key request and token limits the way OpenAI and Anthropic enforce them.

Both providers describe their limits as token buckets that refill continuously: a bucket holds
at most one minute's limit and gains ``limit / 60`` every second, a request is admitted only if
the bucket holds what it costs, and a refused request costs nothing (429 with ``retry-after``).
What a request costs at admission:

* OpenAI: one request and ``prompt tokens + max tokens`` tokens from one TPM bucket (the reply
  length is not known yet, so the cap is counted, as OpenAI does);
* Anthropic: one request, the input tokens from the ITPM bucket and ``max_tokens`` from the OTPM
  bucket, whose unused part is given back when the reply is written (Anthropic estimates OTPM
  from ``max_tokens`` and corrects it at the end).

Every reply carries the provider's headers: OpenAI's ``x-ratelimit-{limit,remaining,reset}-
{requests,tokens}`` (reset as a duration such as ``20ms``, ``1s``, ``6m0s``: the time until the
bucket is full again) and Anthropic's ``anthropic-ratelimit-{requests,input-tokens,
output-tokens,tokens}-{limit,remaining,reset}`` (reset as an RFC 3339 time; ``tokens-*`` is the
most restrictive of the two token buckets).

Pure logic with an injectable clock; the handlers in ``judgeflow.simulator.live`` call
``RateLimiter.admit`` and ``RateLimiter.release``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from judgeflow.simulator.config import RateLimits


class Bucket:
    """``limit`` per minute, refilled continuously, at most ``limit`` saved up."""

    __slots__ = ("limit", "rate", "level", "stamp")

    def __init__(self, limit: int, now: float) -> None:
        self.limit = limit
        self.rate = limit / 60.0
        self.level = float(limit)
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(float(self.limit), self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0 when it fits now; call ``refill`` first)."""
        need = min(amount, float(self.limit)) - self.level
        return 0.0 if need <= 0 else need / self.rate

    def reset_s(self) -> float:
        """Seconds until the bucket is full again (what the ``reset`` headers say)."""
        return (self.limit - self.level) / self.rate

    def remaining(self) -> int:
        return max(0, int(self.level))


def go_duration(seconds: float) -> str:
    """A duration the way OpenAI's ``x-ratelimit-reset-*`` headers write it: ``0s``, ``20ms``,
    ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"


def rfc3339(epoch_s: float) -> str:
    """An RFC 3339 UTC time, as Anthropic's ``*-reset`` headers write it."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Account:
    """The buckets of one key (or of everyone, in the ``global`` scope)."""

    requests: Bucket | None
    tokens: Bucket | None  # OpenAI TPM, Anthropic ITPM
    output: Bucket | None  # Anthropic OTPM only


@dataclass(slots=True)
class Admission:
    """What ``admit`` decided: headers for the reply, and when refused the wait and which limit."""

    headers: dict[str, str]
    refused: str | None = None  # "requests" or "tokens"; None when admitted
    retry_after_s: float = 0.0
    limit: int = 0
    charged: dict[str, float] = field(default_factory=dict)


class RateLimiter:
    """All accounts of one simulator. Single-threaded (the server's event loop): no locks."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self._accounts: dict[tuple[str, bool], Account] = {}
        self._config: RateLimits | None = None

    def _account(self, config: RateLimits, key: str, anthropic: bool, now: float) -> Account:
        if config != self._config:  # new limits: every account starts again, full
            self._accounts.clear()
            self._config = config
        scope_key = "*" if config.scope == "global" else key
        account = self._accounts.get((scope_key, anthropic))
        if account is None:
            limits = config.per_key.get(key, config) if config.scope == "key" else config
            rpm, tpm = limits.rpm, limits.tpm
            out = (limits.output_tpm or tpm) if anthropic else None
            account = Account(
                Bucket(rpm, now) if rpm else None,
                Bucket(tpm, now) if tpm else None,
                Bucket(out, now) if out else None,
            )
            self._accounts[(scope_key, anthropic)] = account
        return account

    def admit(
        self, config: RateLimits, key: str, *, anthropic: bool, input_tokens: int, max_tokens: int
    ) -> Admission:
        """Take one request's cost from ``key``'s buckets, or refuse it and take nothing."""
        now = self._clock()
        account = self._account(config, key, anthropic, now)
        cost: list[tuple[str, Bucket, float]] = []
        if account.requests is not None:
            cost.append(("requests", account.requests, 1.0))
        if account.tokens is not None:
            cost.append(("tokens", account.tokens, float(input_tokens if anthropic else input_tokens + max_tokens)))
        if account.output is not None:
            cost.append(("tokens", account.output, float(max_tokens)))
        refused, wait, limit = None, 0.0, 0
        for name, bucket, amount in cost:
            bucket.refill(now)
            w = bucket.wait_for(amount)
            if w > wait:
                refused, wait, limit = name, w, bucket.limit
        charged: dict[str, float] = {}
        if refused is None:
            for _, bucket, amount in cost:
                bucket.level -= min(amount, float(bucket.limit))
            if account.output is not None:
                charged["output"] = float(max_tokens)
        headers = self._headers(account, anthropic, now)
        if refused is not None:
            headers["retry-after"] = str(max(1, math.ceil(wait)))
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        return Admission(headers, refused, wait, limit, charged)

    def release(self, config: RateLimits, key: str, *, anthropic: bool, unused_output_tokens: int) -> None:
        """Anthropic: give back the part of ``max_tokens`` the reply did not use."""
        if not anthropic or unused_output_tokens <= 0:
            return
        account = self._accounts.get(("*" if config.scope == "global" else key, True))
        if account is not None and account.output is not None:
            account.output.refill(self._clock())
            account.output.level = min(float(account.output.limit), account.output.level + unused_output_tokens)

    def _headers(self, account: Account, anthropic: bool, now: float) -> dict[str, str]:
        out: dict[str, str] = {}
        if not anthropic:
            for name, bucket in (("requests", account.requests), ("tokens", account.tokens)):
                if bucket is not None:
                    out[f"x-ratelimit-limit-{name}"] = str(bucket.limit)
                    out[f"x-ratelimit-remaining-{name}"] = str(bucket.remaining())
                    out[f"x-ratelimit-reset-{name}"] = go_duration(bucket.reset_s())
            return out
        wall = self._wall()
        for name, b in (("requests", account.requests), ("input-tokens", account.tokens),
                        ("output-tokens", account.output)):
            if b is not None:
                b.refill(now)
                out[f"anthropic-ratelimit-{name}-limit"] = str(b.limit)
                out[f"anthropic-ratelimit-{name}-remaining"] = str(b.remaining())
                out[f"anthropic-ratelimit-{name}-reset"] = rfc3339(wall + b.reset_s())
        token_buckets = [b for b in (account.tokens, account.output) if b is not None]
        if token_buckets:  # the most restrictive token limit in effect
            b = min(token_buckets, key=lambda x: x.level / x.limit)
            out["anthropic-ratelimit-tokens-limit"] = str(b.limit)
            out["anthropic-ratelimit-tokens-remaining"] = str(b.remaining())
            out["anthropic-ratelimit-tokens-reset"] = rfc3339(wall + b.reset_s())
        return out


__all__ = ["Admission", "Bucket", "RateLimiter", "go_duration", "rfc3339"]
