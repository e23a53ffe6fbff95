"""``make_client``: the right judge client for a spec, with its API key from the environment.

The key is read from ``spec.api_key_env`` (default ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``)
at call time; it lives only inside the client object (never in its repr, a log line or an
exception message).
"""

from __future__ import annotations

import logging
import os

from judgeflow.clients.base import JudgeClient, PermanentError, remember_secret
from judgeflow.clients.fast_anthropic import FastAnthropicClient
from judgeflow.clients.fast_openai import FastOpenAIClient, is_openai_hosted
from judgeflow.clients.resilient import ResilientClient
from judgeflow.specs import JudgeSpec

log = logging.getLogger(__name__)

#: (judge, base_url) already warned about in this process: one warning, not one per chunk.
_warned_foreign_openai: set[tuple[str, str]] = set()

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "openai-compatible": "OPENAI_API_KEY",
    "vllm": "OPENAI_API_KEY",
}


def resolve_api_key(spec: JudgeSpec, api_key: str | None = None) -> str | None:
    """``api_key`` if given, else the env var the spec names (or the provider's default).

    Hosted OpenAI/Anthropic without a key fail here with the *name* of the variable to set;
    a self-hosted server (custom ``base_url``, vLLM) may run without auth.
    """
    if api_key:
        remember_secret(api_key)
        return api_key
    env = spec.api_key_env or DEFAULT_KEY_ENV.get(spec.provider)
    value = os.environ.get(env) if env else None
    if not value and spec.provider in ("openai", "anthropic") and spec.base_url is None:
        raise PermanentError(f"judge {spec.name!r}: no API key; set the environment variable {env}")
    remember_secret(value)  # from now on redacted from every message of this process
    return value or None


def make_transport(spec: JudgeSpec, api_key: str | None = None) -> JudgeClient:
    """The single-attempt transport for ``spec`` (no retries, no limits): see ``make_client``."""
    key = resolve_api_key(spec, api_key)
    if spec.provider == "anthropic":
        if spec.transport == "sdk":
            from judgeflow.clients.sdk_anthropic import SDKAnthropicClient  # imports the SDK: lazily

            return SDKAnthropicClient(model=spec.model, api_key=key, base_url=spec.base_url, timeout_s=spec.timeout_s)
        return FastAnthropicClient(
            model=spec.model, api_key=key, base_url=spec.base_url,
            concurrency=spec.concurrency, timeout_s=spec.timeout_s,
        )
    if spec.provider in ("openai", "openai-compatible", "vllm"):
        vllm_extras = spec.provider != "openai"
        if spec.provider != "openai" and spec.base_url is None:
            raise ValueError(f"judge {spec.name!r}: provider {spec.provider!r} needs base_url")
        max_tokens_field = vllm_extras or not is_openai_hosted(spec.base_url)
        if not vllm_extras and max_tokens_field:
            _warn_foreign_openai(spec)
        if spec.transport == "sdk":
            from judgeflow.clients.sdk_openai import SDKOpenAIClient  # imports the SDK: lazily

            return SDKOpenAIClient(
                model=spec.model, api_key=key, base_url=spec.base_url,
                timeout_s=spec.timeout_s, vllm_extras=vllm_extras, max_tokens_field=max_tokens_field,
            )
        return FastOpenAIClient(
            model=spec.model, api_key=key, base_url=spec.base_url, concurrency=spec.concurrency,
            timeout_s=spec.timeout_s, vllm_extras=vllm_extras, max_tokens_field=max_tokens_field,
        )
    raise ValueError(f"judge {spec.name!r}: provider {spec.provider!r} has no API client (GPU judge)")


def _warn_foreign_openai(spec: JudgeSpec) -> None:
    """Say once why provider ``openai`` at another server gets ``max_tokens``."""
    key = (spec.name, str(spec.base_url))
    if key in _warned_foreign_openai:
        return
    _warned_foreign_openai.add(key)
    log.warning(
        "judge %r: base_url %s is not OpenAI's API, so requests carry max_tokens (what "
        "OpenAI-compatible servers read) instead of OpenAI's max_completion_tokens; declare "
        "provider: openai-compatible for such a server (vLLM's sampling fields are sent too)",
        spec.name, spec.base_url,
    )


def make_client(spec: JudgeSpec, api_key: str | None = None) -> ResilientClient:
    """The client live judging uses: transport by ``spec.provider``/``spec.transport``, wrapped
    with the spec's RPM/TPM limits, per-attempt timeout and retry policy."""
    return ResilientClient.for_spec(make_transport(spec, api_key), spec)
