"""Simulator configuration: where it listens, how fast it answers, which faults it injects.

Every field can be changed while the server runs (``Simulator.configure`` / ``POST /_sim/config``),
so one test can start clean, switch on 429s, and switch them off again.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Rate = float


def _rate() -> float:
    return Field(default=0.0, ge=0.0, le=1.0)  # type: ignore[no-any-return]


class KeyLimits(BaseModel):
    """One account's per-minute limits; None leaves that limit off."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=1)
    """Requests per minute."""
    tpm: int | None = Field(default=None, ge=1)
    """Tokens per minute: OpenAI's TPM (prompt + max tokens), Anthropic's input tokens (ITPM)."""
    output_tpm: int | None = Field(default=None, ge=1)
    """Anthropic's output tokens per minute (OTPM); defaults to ``tpm``."""


class RateLimits(KeyLimits):
    """Provider-like limits on the live endpoints (``judgeflow.simulator.rate_limits``)."""

    scope: Literal["key", "global"] = "key"
    """``key``: every API key has its own buckets (as every provider account does);
    ``global``: all keys share one set."""
    per_key: dict[str, KeyLimits] = Field(default_factory=dict)
    """Limits for named keys (scope ``key``), instead of ``rpm``/``tpm``/``output_tpm``."""


class SimulatorConfig(BaseModel):
    """All knobs of the provider simulator. Rates are probabilities in [0, 1]."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    seed: int = 0
    require_api_key: str | None = None
    """When set, requests without this exact key get 401 (otherwise any key is accepted)."""
    echo_api_key: bool = False
    """Every error message quotes the API key the client presented, as some gateways do: 401s,
    429/5xx faults, 200 error replies, batch errors and the error lines of batch results. For
    proving that a client redacts keys on every path."""

    # --- live endpoints (chat completions, messages) -------------------------------------
    latency_ms: float = Field(default=0.0, ge=0.0)
    jitter_ms: float = Field(default=0.0, ge=0.0)
    rate_429: Rate = _rate()
    rate_500: Rate = _rate()
    rate_529: Rate = _rate()
    """Anthropic ``overloaded_error`` (HTTP 529); on the OpenAI endpoint it is a 503."""
    rate_timeout: Rate = _rate()
    timeout_mode: Literal["hold", "drop"] = "hold"
    """``hold``: keep the request open ``timeout_hold_s`` then close without answering (the
    client's own timeout fires first); ``drop``: close the connection at once."""
    timeout_hold_s: float = Field(default=5.0, ge=0.0)
    rate_unparseable: Rate = _rate()
    """Reply with judge text that contains no verdict."""
    rate_200_error: Rate = _rate()
    """Reply 200 with an error object and no ``choices`` / ``content`` (some gateways do)."""
    retry_after_s: float = Field(default=0.2, ge=0.0, le=1.0)
    """Sent as ``retry-after`` (whole seconds, rounded up) and ``retry-after-ms`` on 429/529."""
    position_bias_rate: Rate = _rate()
    """Fraction of relative / pairwise prompts answered "A" regardless of content."""
    rate_limits: RateLimits | None = None
    """Per-minute request and token limits enforced like OpenAI's and Anthropic's (429 with
    ``retry-after`` beyond them, their rate-limit headers on every reply). Off by default."""

    # --- batch control plane -------------------------------------------------------------
    status_429_rate: Rate = _rate()
    """429 on batch status calls (GET batch) only."""
    batch_create_429_rate: Rate = _rate()
    """429 on batch creation (no batch is created)."""

    # --- batch life cycle (wall clock, computed lazily on each call) ----------------------
    batch_validating_s: float = Field(default=0.2, ge=0.0)
    batch_in_progress_s: float = Field(default=1.5, ge=0.0)
    batch_finalizing_s: float = Field(default=0.3, ge=0.0)
    batch_cancel_s: float = Field(default=0.2, ge=0.0)
    """Time from a cancel request to ``cancelled`` / ``ended``."""

    # --- batch outcomes ------------------------------------------------------------------
    batch_fail_validation: bool = False
    fail_validation_first_n_batches: int = Field(default=0, ge=0)
    batch_fail_validation_code: str = "token_limit_exceeded"
    batch_token_limit: int | None = Field(default=None, ge=1)
    """Enqueued-token limit per batch (approx. chars/4 of the bodies); above it validation fails."""
    batch_expire: bool = False
    expire_first_n_batches: int = Field(default=0, ge=0)
    batch_expire_done_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of an expiring batch's requests finished before it expires."""
    batch_request_error_rate: Rate = _rate()
    """Share of batch requests that fail individually (OpenAI error file / Anthropic errored)."""
    batch_request_error_seed_by_attempt: bool = True
    """When true, a custom_id that failed in one batch is re-drawn in the next (so a re-submission
    round can succeed); when false the same custom_id always fails."""

    # --- batch result-line faults (one draw per result line, per batch: a re-submission redraws)
    batch_bad_line_rate: Rate = _rate()
    """Result lines written as invalid JSON (alternately cut in half, custom_id still readable,
    and plain garbage). Such an answer is not counted as paid: the client cannot use it."""
    batch_unknown_id_rate: Rate = _rate()
    """Result lines followed (at the end of the file) by a copy for a custom_id never sent."""
    batch_duplicate_rate: Rate = _rate()
    """Result lines written twice, identical (the copy at the end of the file)."""
    batch_conflict_rate: Rate = _rate()
    """Successful result lines written twice with different answers (the copy at the end);
    not counted as paid."""
    batch_line_faults_first_n: int = Field(default=0, ge=0)
    """When > 0, result-line faults hit only the first n batches of each provider (on demand:
    the re-submission rounds then come back clean)."""

    max_batch_requests: int = Field(default=50_000, ge=1)
    max_anthropic_batch_requests: int = Field(default=100_000, ge=1)

    def with_batch_seconds(self, total_s: float) -> "SimulatorConfig":
        """Scale the batch life cycle so a batch completes in about ``total_s`` seconds."""
        return self.model_copy(
            update={
                "batch_validating_s": total_s * 0.1,
                "batch_in_progress_s": total_s * 0.75,
                "batch_finalizing_s": total_s * 0.15,
            }
        )


__all__ = ["KeyLimits", "RateLimits", "SimulatorConfig"]
