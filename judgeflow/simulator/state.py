"""Mutable server state: config, counters, fault draws, ids, double-payment detectors.

One ``SimState`` lives on the server's event loop; handlers touch it without locks (single
thread). Fault draws on the live endpoints are a pure function of (seed, request body, how many
times that body was seen), so a run is reproducible even when a concurrent client sends requests
in a different order each time.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections import Counter
from typing import Any, Literal

from judgeflow.simulator.config import SimulatorConfig
from judgeflow.simulator.rate_limits import RateLimiter

LiveFault = Literal["429", "500", "529", "timeout"] | None

_TWO64 = 2.0**64


class SimState:
    """Everything the handlers share."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.prefix = os.urandom(4).hex()
        self._seq = 0
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self._attempts: dict[bytes, int] = {}
        self._answered: set[bytes] = set()
        self.paid: dict[str, set[str]] = {"openai": set(), "anthropic": set()}
        self.batches_created: Counter[str] = Counter()
        self.batch_rng = random.Random(config.seed)
        # Stores (files, batches) live in the provider modules but are kept here.
        self.files: dict[str, dict[str, Any]] = {}
        self.openai_batches: dict[str, Any] = {}
        self.anthropic_batches: dict[str, Any] = {}
        self.limits = RateLimiter()  # the ``rate_limits`` mode's buckets, per key

    # --- ids -------------------------------------------------------------------------
    def next_id(self, prefix: str) -> str:
        """A unique id like ``chatcmpl-<server prefix><counter>``."""
        self._seq += 1
        return f"{prefix}{self.prefix}{self._seq:012x}"

    # --- live fault draws --------------------------------------------------------------
    def draw(self, body: bytes) -> tuple[bytes, float, float, float]:
        """(body key, u_fault, u_unparseable, u_jitter) for the n-th sight of ``body``."""
        key = hashlib.blake2b(body, digest_size=16).digest()
        n = self._attempts.get(key, 0)
        self._attempts[key] = n + 1
        d = hashlib.blake2b(
            key + n.to_bytes(4, "big"), digest_size=24, key=self.config.seed.to_bytes(8, "big", signed=True)
        ).digest()
        return (
            key,
            int.from_bytes(d[0:8], "big") / _TWO64,
            int.from_bytes(d[8:16], "big") / _TWO64,
            int.from_bytes(d[16:24], "big") / _TWO64,
        )

    def live_fault(self, u: float, *, anthropic: bool) -> LiveFault:
        """Pick at most one fault for a live call from one uniform draw."""
        c = self.config
        edge = c.rate_429
        if u < edge:
            return "429"
        edge += c.rate_500
        if u < edge:
            return "500"
        edge += c.rate_529
        if u < edge:
            return "529"
        edge += c.rate_timeout
        if u < edge:
            return "timeout"
        return None

    def record_success(self, key: bytes) -> None:
        """Count a successful live answer; flag bodies answered successfully before."""
        self.counts["successful_answers"] += 1
        if key in self._answered:
            self.counts["duplicate_successes"] += 1
        else:
            self._answered.add(key)

    # --- batch double payment -----------------------------------------------------------
    def check_submitted(self, provider: str, custom_ids: list[str]) -> None:
        """Count custom_ids submitted again after they already succeeded in an earlier batch."""
        paid = self.paid[provider]
        again = sum(1 for cid in custom_ids if cid in paid)
        if again:
            self.counts["custom_ids_paid_twice"] += again

    def record_paid(self, provider: str, custom_ids: list[str]) -> None:
        """Remember batch successes; a second success for a custom_id is also counted."""
        paid = self.paid[provider]
        for cid in custom_ids:
            if cid in paid:
                self.counts["custom_ids_succeeded_twice"] += 1
            else:
                paid.add(cid)

    # --- stats ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of the counters."""
        keys = (
            "chat_completions",
            "messages",
            "successful_answers",
            "files_created",
            "file_downloads",
            "openai_batches_created",
            "anthropic_batches_created",
            "openai_batch_requests",
            "anthropic_batch_requests",
            "batch_status_calls",
            "batch_results_downloads",
            "batch_cancels",
            "unauthorized",
            "bad_requests",
            "custom_ids_paid_twice",
            "custom_ids_succeeded_twice",
            "duplicate_successes",
        )
        out: dict[str, Any] = {k: self.counts.get(k, 0) for k in keys}
        for k, v in self.counts.items():
            out.setdefault(k, v)
        out["faults"] = dict(self.faults)
        out["faults_total"] = sum(self.faults.values())
        return out

    def reset_stats(self) -> None:
        """Zero the counters. Stored files and batches stay, and so does the history the
        double-payment detectors compare against (what was already answered / paid), so a
        re-submission after a reset is still caught."""
        self.counts.clear()
        self.faults.clear()


def now() -> float:
    """Wall clock (seconds); one place so the life cycle code reads naturally."""
    return time.time()


__all__ = ["LiveFault", "SimState", "now"]
