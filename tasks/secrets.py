"""Provider API keys for deployed flows: environment first, then a Prefect ``Secret`` block.

Why here and not in ``judgeflow/``: the core never imports Prefect, and reads keys only from the
environment (``judgeflow.clients.resolve_api_key``). A deployed flow run, however, often has no
key in its environment: on Kubernetes the key lives in the Prefect server as a Secret block and
must never be a flow parameter (parameters are stored, shown in the UI and copied into every
run). This module bridges the two: the flow calls ``resolve_api_key(spec)`` once per judge and
hands the value to ``judgeflow.clients.make_client(spec, api_key=...)``.

Convention: the block for a provider is named ``judgeflow-<provider>-api-key`` (for example
``judgeflow-openai-api-key``, ``judgeflow-anthropic-api-key``), created with
``prefect block create secret`` or ``Secret(value=...).save("judgeflow-openai-api-key")``.

Nothing here logs, returns in an error message or stores the value; only *where* it came from
(the variable or block name) is logged, at debug level. Every value found is handed to
``judgeflow.clients.base.remember_secret``, so it is redacted from every message of the process
(a gateway echoing a block-held key in an error body included).
"""

from __future__ import annotations

import os
from typing import Literal

from prefect.blocks.system import Secret
from prefect.logging import get_logger

from judgeflow.clients.base import remember_secret
from judgeflow.specs import JudgeSpec

# The same defaults as judgeflow.clients.factory, so env resolution matches the core's.
DEFAULT_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "openai-compatible": "OPENAI_API_KEY",
    "vllm": "OPENAI_API_KEY",
}

KeySource = Literal["env", "block", "none"]

logger = get_logger("judgeflow.secrets")


def secret_block_name(provider: str) -> str:
    """Name of the Secret block that holds ``provider``'s key, e.g. ``judgeflow-openai-api-key``."""
    return f"judgeflow-{provider.lower()}-api-key"


def key_env_name(spec: JudgeSpec) -> str | None:
    """The environment variable the key is read from (the spec's, else the provider default)."""
    return spec.api_key_env or DEFAULT_KEY_ENV.get(spec.provider)


def _from_env(spec: JudgeSpec) -> str | None:
    env = key_env_name(spec)
    value = os.environ.get(env) if env else None
    remember_secret(value)
    return value or None


def _secret_value(block: Secret) -> str | None:
    value = block.get()
    if isinstance(value, str):
        remember_secret(value)
        return value or None
    return None  # a JSON secret is not an API key: treat it as absent rather than str() it


def resolve_api_key_with_source(spec: JudgeSpec) -> tuple[str | None, KeySource]:
    """(key, where it came from): env var, then the provider's Secret block, else (None, "none")."""
    value = _from_env(spec)
    if value:
        logger.debug("judge %s: API key from environment variable %s", spec.name, key_env_name(spec))
        return value, "env"
    if spec.provider == "pairrm":
        return None, "none"  # a local model: no key to look for
    name = secret_block_name(spec.provider)
    try:
        block = Secret.load(name, _sync=True)
    except ValueError:  # "Unable to find block document named ..."
        logger.debug("judge %s: no %s in env and no Secret block %s", spec.name, key_env_name(spec), name)
        return None, "none"
    value = _secret_value(block)
    if value:
        logger.debug("judge %s: API key from Secret block %s", spec.name, name)
        return value, "block"
    return None, "none"


def resolve_api_key(spec: JudgeSpec) -> str | None:
    """The judge's API key, or None (a self-hosted server without auth, or simply missing).

    A missing key for hosted OpenAI/Anthropic is reported by ``judgeflow.clients.make_client``
    with the name of the variable to set, so this function does not raise.
    """
    return resolve_api_key_with_source(spec)[0]


async def aresolve_api_key(spec: JudgeSpec) -> str | None:
    """``resolve_api_key`` for async flows (loads the block without blocking the event loop)."""
    value = _from_env(spec)
    if value or spec.provider == "pairrm":
        return value
    try:
        block = await Secret.aload(secret_block_name(spec.provider))
    except ValueError:
        return None
    return _secret_value(block)
