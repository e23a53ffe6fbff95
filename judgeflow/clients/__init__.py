"""Judge clients: one attempt per call over a fast (aiohttp) or SDK transport, plus the shared
retry, rate-limit and timeout layer. ``make_client(spec)`` picks and wires them."""

from __future__ import annotations

from typing import Any

from judgeflow.clients.base import (
    ClientError,
    Completion,
    JudgeClient,
    PermanentError,
    RequestTimeout,
    TimeoutError,
    TransientError,
)
from judgeflow.clients.factory import make_client, make_transport, resolve_api_key
from judgeflow.clients.fast_anthropic import FastAnthropicClient
from judgeflow.clients.fast_openai import FastOpenAIClient
from judgeflow.clients.limiter import RateLimiter, TokenBucket
from judgeflow.clients.resilient import ResilientClient
from judgeflow.clients.retry import RetryPolicy, RetryStats, call_with_retries

__all__ = [
    "ClientError", "Completion", "FastAnthropicClient", "FastOpenAIClient", "JudgeClient",
    "PermanentError", "RateLimiter", "RequestTimeout", "ResilientClient", "RetryPolicy",
    "RetryStats", "SDKAnthropicClient", "SDKOpenAIClient", "TimeoutError", "TokenBucket",
    "TransientError", "call_with_retries", "make_client", "make_transport", "resolve_api_key",
]


def __getattr__(name: str) -> Any:
    # The SDK transports import the official SDKs (seconds each on a small box): only on demand.
    if name == "SDKOpenAIClient":
        from judgeflow.clients.sdk_openai import SDKOpenAIClient

        return SDKOpenAIClient
    if name == "SDKAnthropicClient":
        from judgeflow.clients.sdk_anthropic import SDKAnthropicClient

        return SDKAnthropicClient
    raise AttributeError(name)
