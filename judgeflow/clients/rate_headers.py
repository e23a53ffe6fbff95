"""Reading the rate-limit headers OpenAI and Anthropic send on every reply.

* OpenAI: ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
  ``x-ratelimit-reset-requests`` and the same three for ``-tokens``; the reset is a duration
  (``20ms``, ``1s``, ``6m0s``): how long until the bucket is full again.
* Anthropic: ``anthropic-ratelimit-requests-{limit,remaining,reset}`` and
  ``anthropic-ratelimit-tokens-*`` (the most restrictive token limit in effect; the
  ``input-tokens-*`` / ``output-tokens-*`` detail is not needed to pace); the reset is an
  RFC 3339 time.

Cheap: one dict lookup when a reply has no such headers; the pacer
(``judgeflow.clients.limiter.HeaderPacer``) consumes the result.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float | None:
    """Seconds in an OpenAI reset duration (``6m0s``, ``1h2m3.5s``, ``20ms``; a bare number is
    seconds); None when it is not one."""
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def parse_rfc3339(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 time (``2026-12-02T13:37:25Z``, offsets and fractions
    too); None when it is not one."""
    try:
        when = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()


@dataclass(slots=True, frozen=True)
class RateLimitSnapshot:
    """One reply's view of the account: per-minute limits, what remains, seconds to full."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset_s: float | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset_s: float | None = None


def _int(value: Any) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def read_rate_limits(headers: Any, *, now: float | None = None) -> RateLimitSnapshot | None:
    """The snapshot in a reply's headers (any mapping with a case-insensitive ``get``), or None
    when the server sends none."""
    if headers is None:
        return None
    if headers.get("x-ratelimit-limit-requests") is not None or headers.get("x-ratelimit-limit-tokens") is not None:
        def reset(name: str) -> float | None:
            raw = headers.get(f"x-ratelimit-reset-{name}")
            return parse_duration(raw) if raw else None

        return RateLimitSnapshot(
            _int(headers.get("x-ratelimit-limit-requests")), _int(headers.get("x-ratelimit-remaining-requests")),
            reset("requests"),
            _int(headers.get("x-ratelimit-limit-tokens")), _int(headers.get("x-ratelimit-remaining-tokens")),
            reset("tokens"),
        )
    if headers.get("anthropic-ratelimit-requests-limit") is None and headers.get("anthropic-ratelimit-tokens-limit") is None:
        return None
    wall = time.time() if now is None else now

    def until(name: str) -> float | None:
        raw = headers.get(f"anthropic-ratelimit-{name}-reset")
        when = parse_rfc3339(raw) if raw else None
        return None if when is None else max(0.0, when - wall)

    return RateLimitSnapshot(
        _int(headers.get("anthropic-ratelimit-requests-limit")),
        _int(headers.get("anthropic-ratelimit-requests-remaining")), until("requests"),
        _int(headers.get("anthropic-ratelimit-tokens-limit")),
        _int(headers.get("anthropic-ratelimit-tokens-remaining")), until("tokens"),
    )


__all__ = ["RateLimitSnapshot", "parse_duration", "parse_rfc3339", "read_rate_limits"]
