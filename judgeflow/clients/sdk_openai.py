"""``JudgeClient`` over the official ``openai.AsyncOpenAI`` SDK.

For users who want the SDK's own request path (its HTTP stack, headers, proxies, Azure-style
configuration). The SDK's built-in retries are switched off (``max_retries=0``) so that
judgeflow's retry policy (``judgeflow.clients.retry``) is the only one, counted once, honouring
Retry-After the same way for every transport. It costs ~2-4 ms CPU per request, so the fast
client is the default.
"""

from __future__ import annotations

from typing import Any

import openai

from judgeflow.clients.base import Completion, TransientError, remember_secret
from judgeflow.clients.fast_openai import openai_body
from judgeflow.clients.sdk_errors import client_error
from judgeflow.specs import Sampling


class SDKOpenAIClient:
    """``openai.AsyncOpenAI`` with ``max_retries=0`` and ``timeout=timeout_s``."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        vllm_extras: bool = False,
        max_tokens_field: bool | None = None,
    ) -> None:
        self.model = model
        self.vllm_extras = vllm_extras
        self.max_tokens_field = max_tokens_field
        self._api_key = api_key
        remember_secret(api_key)
        # A server without auth (vllm serve) still needs a non-empty key for the SDK.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "EMPTY", base_url=base_url, max_retries=0, timeout=timeout_s
        )

    def __repr__(self) -> str:
        return f"SDKOpenAIClient(model={self.model!r}, base_url={str(self._client.base_url)!r})"

    async def complete(
        self,
        system: str | None,
        user: str,
        *,
        sampling: Sampling,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        body = openai_body(self.model, system, user, sampling, response_format, vllm_extras=self.vllm_extras,
                           max_tokens_field=self.max_tokens_field)
        extra: dict[str, Any] = {}
        if "repetition_penalty" in body:  # not an SDK parameter: goes through extra_body
            extra["extra_body"] = {"repetition_penalty": body.pop("repetition_penalty")}
        try:
            reply = await self._client.chat.completions.create(**body, **extra)
        except openai.APIError as exc:  # every SDK error leaves as a redacted ClientError
            raise client_error(exc, openai, self._api_key) from None
        try:
            choice = reply.choices[0]
        except (AttributeError, IndexError, TypeError) as exc:  # a 200 holding an error object
            raise TransientError(f"malformed reply without choices: {type(exc).__name__}") from None
        usage = getattr(reply, "usage", None)
        return Completion(
            text=choice.message.content or choice.message.refusal or "",
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
            request_id=getattr(reply, "_request_id", None) or reply.id,
        )

    async def aclose(self) -> None:
        await self._client.close()
