"""A loopback provider simulator that the official ``openai`` and ``anthropic`` SDKs talk to.

It serves OpenAI chat completions, Files and Batches, and Anthropic messages and Message Batches,
answers judge prompts with a deterministic judge (``judgeflow.simulator.judge``) whose verdicts
tests can predict, injects faults (latency, 429/500/529, timeouts, unparseable replies, batch
failures) from a seeded draw, and counts everything, including double payments. It powers the
tests, the benchmarks and the no-credentials demo. See docs/simulator.md.
"""

from __future__ import annotations

from judgeflow.simulator.config import SimulatorConfig
from judgeflow.simulator.judge import (
    custom_score,
    expected_preference,
    expected_score,
    expected_verdict_text,
)
from judgeflow.simulator.runner import Simulator

__all__ = [
    "Simulator",
    "SimulatorConfig",
    "custom_score",
    "expected_preference",
    "expected_score",
    "expected_verdict_text",
]
