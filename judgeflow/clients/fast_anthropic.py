"""A lean Anthropic Messages client: the same pooled-aiohttp design as ``FastOpenAIClient``.

``POST {base_url}/v1/messages`` with ``x-api-key`` + ``anthropic-version``; the system prompt is
the top-level ``system`` field and the reply text is the concatenation of its text blocks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from judgeflow.clients.base import (
    Completion,
    PermanentError,
    TimeoutError,
    TransientError,
    error_for_status,
    redact,
)
from judgeflow.clients.fast_openai import error_message
from judgeflow.specs import Sampling

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


def anthropic_body(model: str, system: str | None, user: str, sampling: Sampling) -> dict[str, Any]:
    """The Messages request body (shared with the Message Batches path).

    No sampling parameters: API version 2026-10-21 (sent by the anthropic 2.x SDK) rejects
    ``temperature``/``top_p``/``top_k`` with a 400 even at default values, and the newest models
    reject ``temperature`` on every version; the SDK no longer has the fields. Only
    ``max_tokens`` is taken from ``sampling``, so both transports send the same body.
    """
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": sampling.max_tokens,
        "messages": [{"role": "user", "content": user}],
    }
    if system:
        body["system"] = system
    return body


def parse_anthropic_reply(data: dict[str, Any]) -> Completion:
    """Text (all text blocks joined), usage and stop reason out of a message object."""
    blocks = data.get("content")
    if not isinstance(blocks, list):
        raise TransientError("malformed reply without content blocks")
    text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    usage = data.get("usage") or {}
    return Completion(
        text=text,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        finish_reason=data.get("stop_reason"),
        request_id=data.get("id"),
    )


class FastAnthropicClient:
    """``JudgeClient`` for Anthropic's Messages API over one pooled ``aiohttp.ClientSession``."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        concurrency: int = 64,
        timeout_s: float = 120.0,
    ) -> None:
        self.model = model
        self.base_url = (base_url or ANTHROPIC_BASE_URL).rstrip("/")
        self.url = f"{self.base_url}/v1/messages"
        self.concurrency = concurrency
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._api_key = api_key
        self._headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            self._headers["x-api-key"] = api_key
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never show the key
        return f"FastAnthropicClient(model={self.model!r}, base_url={self.base_url!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency, limit_per_host=self.concurrency, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, timeout=self.timeout
            )
        return self._session

    async def complete(
        self,
        system: str | None,
        user: str,
        *,
        sampling: Sampling,
        response_format: dict[str, Any] | None = None,  # noqa: ARG002 - not supported here
    ) -> Completion:
        body = orjson.dumps(anthropic_body(self.model, system, user, sampling))
        session = self._get_session()
        try:
            async with session.post(self.url, data=body) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise error_for_status(resp.status, error_message(raw), resp.headers, secret=self._api_key)
                header_id = resp.headers.get("request-id")
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise TimeoutError(f"no reply within {self.timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            raise TransientError(redact(f"connection error: {type(exc).__name__}: {exc}", self._api_key)) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise TransientError("reply is not JSON") from None
        if not isinstance(data, dict):
            raise PermanentError("reply is not a JSON object")
        completion = parse_anthropic_reply(data)
        if header_id:
            completion.request_id = header_id
        return completion

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
