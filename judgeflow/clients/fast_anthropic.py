"""A lean Anthropic Messages client: the same pooled-aiohttp design as ``FastOpenAIClient``.

``POST {base_url}/v1/messages`` with ``x-api-key`` + ``anthropic-version``; the system prompt is
the top-level ``system`` field and the reply text is the concatenation of its text blocks.
"""

from __future__ import annotations

from typing import Any

from judgeflow.clients.base import Completion, TransientError
from judgeflow.clients.pooled import PooledJSONTransport
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


class FastAnthropicClient(PooledJSONTransport):
    """``JudgeClient`` for Anthropic's Messages API over one pooled ``aiohttp.ClientSession``."""

    request_id_header = "request-id"

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
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        super().__init__(url=f"{self.base_url}/v1/messages", headers=headers, api_key=api_key,
                         concurrency=concurrency, timeout_s=timeout_s)

    def __repr__(self) -> str:  # never show the key
        return f"FastAnthropicClient(model={self.model!r}, base_url={self.base_url!r})"

    async def complete(
        self,
        system: str | None,
        user: str,
        *,
        sampling: Sampling,
        response_format: dict[str, Any] | None = None,  # noqa: ARG002 - not supported here
    ) -> Completion:
        data, header_id, rate = await self.post_json_paced(anthropic_body(self.model, system, user, sampling))
        completion = parse_anthropic_reply(data)
        if header_id:
            completion.request_id = header_id
        completion.rate_limits = rate
        return completion
