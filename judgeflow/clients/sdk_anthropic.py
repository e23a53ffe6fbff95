"""``JudgeClient`` over the official ``anthropic.AsyncAnthropic`` SDK.

The system prompt goes in the top-level ``system`` field and the reply text is joined from the
text content blocks. The SDK's own retries are off (``max_retries=0``): judgeflow's retry policy
applies, Retry-After included, the same as for every other transport.
"""

from __future__ import annotations

from typing import Any

import anthropic

from judgeflow.clients.base import Completion, TransientError, remember_secret
from judgeflow.clients.fast_anthropic import anthropic_body
from judgeflow.clients.sdk_errors import client_error
from judgeflow.specs import Sampling


class SDKAnthropicClient:
    """``anthropic.AsyncAnthropic`` with ``max_retries=0`` and ``timeout=timeout_s``."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.model = model
        self._api_key = api_key
        remember_secret(api_key)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "EMPTY", base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def __repr__(self) -> str:
        return f"SDKAnthropicClient(model={self.model!r}, base_url={str(self._client.base_url)!r})"

    async def complete(
        self,
        system: str | None,
        user: str,
        *,
        sampling: Sampling,
        response_format: dict[str, Any] | None = None,  # noqa: ARG002 - not supported here
    ) -> Completion:
        body = anthropic_body(self.model, system, user, sampling)
        try:
            reply = await self._client.messages.create(**body)
        except anthropic.APIError as exc:  # every SDK error leaves as a redacted ClientError
            raise client_error(exc, anthropic, self._api_key) from None
        blocks = getattr(reply, "content", None)
        if not isinstance(blocks, list):  # a 200 holding an error object
            raise TransientError("malformed reply without content blocks")
        text = "".join(block.text for block in blocks if getattr(block, "type", None) == "text")
        return Completion(
            text=text,
            input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens,
            finish_reason=reply.stop_reason,
            request_id=getattr(reply, "_request_id", None) or reply.id,
        )

    async def aclose(self) -> None:
        await self._client.close()
