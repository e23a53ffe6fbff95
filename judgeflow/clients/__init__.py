"""Judge clients: one attempt per call over a fast (aiohttp) or SDK transport, plus the shared
retry, rate-limit and timeout layer. ``make_client(spec)`` picks and wires them."""

from __future__ import annotations

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
from judgeflow.clients.sdk_anthropic import SDKAnthropicClient
from judgeflow.clients.sdk_openai import SDKOpenAIClient

__all__ = [
    "ClientError", "Completion", "FastAnthropicClient", "FastOpenAIClient", "JudgeClient",
    "PermanentError", "RateLimiter", "RequestTimeout", "ResilientClient", "RetryPolicy",
    "RetryStats", "SDKAnthropicClient", "SDKOpenAIClient", "TimeoutError", "TokenBucket",
    "TransientError", "call_with_retries", "make_client", "make_transport", "resolve_api_key",
]
