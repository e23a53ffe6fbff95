"""A batch's life cycle as a pure function of wall-clock time.

Why lazy: nothing runs in the background. Each status call asks ``Timeline.phase(now)``, so a
batch "completes" exactly when a client looks after its deadline, and the durations (seconds
in tests instead of hours) are frozen into the batch when it is created.

Phases (OpenAI names; Anthropic maps them to in_progress / canceling / ended):
validating -> in_progress -> finalizing -> completed; validating -> failed;
in_progress -> expired (part done); cancelling -> cancelled (part done).
Requests finish in input order, evenly over the in-progress window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Phase = Literal["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})


@dataclass(slots=True)
class Timeline:
    """When each step of one batch happens (epoch seconds) and how much gets done."""

    created: float
    validating_s: float
    in_progress_s: float
    finalizing_s: float
    cancel_s: float
    fail_validation: bool = False
    expire: bool = False
    expire_done_fraction: float = 0.5
    cancel_at: float | None = None

    @property
    def v_end(self) -> float:
        return self.created + self.validating_s

    @property
    def ip_end(self) -> float:
        return self.v_end + self.in_progress_s

    @property
    def fin_end(self) -> float:
        return self.ip_end + self.finalizing_s

    def phase(self, now: float) -> Phase:
        """The phase at time ``now``."""
        if self.cancel_at is not None:
            return "cancelling" if now < self.cancel_at + self.cancel_s else "cancelled"
        if now < self.v_end:
            return "validating"
        if self.fail_validation:
            return "failed"
        if now < self.ip_end:
            return "in_progress"
        if self.expire:
            return "expired"
        if now < self.fin_end:
            return "finalizing"
        return "completed"

    def done(self, n: int, at: float) -> int:
        """How many of ``n`` requests are finished at time ``at`` (never more than will be)."""
        if self.fail_validation or at <= self.v_end:
            return 0
        frac = 1.0 if self.in_progress_s <= 0 else min(1.0, (at - self.v_end) / self.in_progress_s)
        if self.expire:
            frac *= self.expire_done_fraction
        return min(n, math.floor(n * frac + 1e-9))

    def final_done(self, n: int) -> int:
        """How many requests are finished once the batch is terminal."""
        if self.cancel_at is not None:
            return self.done(n, self.cancel_at)
        return self.done(n, math.inf)

    def cancel(self, now: float) -> bool:
        """Request cancellation; only a validating or in-progress batch can be cancelled."""
        if self.phase(now) not in ("validating", "in_progress"):
            return False
        self.cancel_at = now
        return True

    def ended_at(self, now: float) -> float | None:
        """When the batch became terminal (None while it is not)."""
        phase = self.phase(now)
        if phase == "cancelled":
            assert self.cancel_at is not None
            return self.cancel_at + self.cancel_s
        if phase == "failed":
            return self.v_end
        if phase == "expired":
            return self.ip_end
        if phase == "completed":
            return self.fin_end
        return None


__all__ = ["TERMINAL", "Phase", "Timeline"]
