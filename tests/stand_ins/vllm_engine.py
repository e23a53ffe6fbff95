"""A stand-in for ``vllm.LLM`` with its ``generate`` interface, for tests without a GPU.

``generate(prompts, sampling_params, use_tqdm=...)`` returns one RequestOutput-like object per
prompt, in order, with ``.prompt_token_ids`` and ``.outputs[0].text`` / ``.token_ids``. Replies
are Prometheus-style (feedback then ``[RESULT] n`` or ``[RESULT] A|B``), chosen from a hash of
the prompt so they are deterministic. The first ``bad_first`` replies to the prompts selected by
``bad`` are unparseable, which exercises re-generation of only those items; ``never_parse``
prompts never get a valid reply. Every call is recorded so tests can check what was sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "repetition_penalty")


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"
    index: int = 0


@dataclass
class RequestOutput:
    request_id: str
    prompt: str
    prompt_token_ids: list[int]
    outputs: list[Completion]
    finished: bool = True


def _digest(prompt: str) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)


@dataclass
class StandInLLM:
    """``vllm.LLM``'s generate interface over canned Prometheus replies."""

    bad: Callable[[str], bool] = lambda prompt: False
    bad_first: int = 1
    never_parse: Callable[[str], bool] = lambda prompt: False
    calls: list[list[str]] = field(default_factory=list)
    params_seen: list[Any] = field(default_factory=list)
    _served: dict[str, int] = field(default_factory=dict)

    def generate(self, prompts: Sequence[str], sampling_params: Any = None, use_tqdm: bool = True) -> list[RequestOutput]:
        if isinstance(prompts, str):
            prompts = [prompts]
        for name in SAMPLING_FIELDS:  # what vllm.SamplingParams would carry
            if not hasattr(sampling_params, name):
                raise TypeError(f"sampling_params lacks {name!r}")
        self.calls.append(list(prompts))
        self.params_seen.append(sampling_params)
        return [self._answer(i, p) for i, p in enumerate(prompts)]

    def _answer(self, index: int, prompt: str) -> RequestOutput:
        served = self._served.get(prompt, 0)
        self._served[prompt] = served + 1
        h = _digest(prompt)
        if self.never_parse(prompt) or (self.bad(prompt) and served < self.bad_first):
            text = "Both responses have merits and I cannot decide which one is better."
        elif "(A or B)" in prompt:
            text = f"Response {'A' if h % 2 else 'B'} follows the rubric more closely. [RESULT] {'A' if h % 2 else 'B'}"
        else:
            text = f"The response is adequate but misses details. [RESULT] {1 + h % 5}"
        return RequestOutput(
            request_id=str(index),
            prompt=prompt,
            prompt_token_ids=list(range(len(prompt.split()))),
            outputs=[Completion(text=text, token_ids=list(range(len(text.split()))))],
        )


def make_engine(model: str, settings: Any) -> StandInLLM:
    """Engine factory with ``tasks.gpu``'s signature: replies to prompts with "No idea" fail once.

    Named in flow parameters / ``JUDGEFLOW_VLLM_ENGINE_FACTORY`` as
    ``"tests.stand_ins.vllm_engine:make_engine"``.
    """
    engine = StandInLLM(bad=lambda prompt: "No idea" in prompt, bad_first=1)
    engine.model = model  # type: ignore[attr-defined]
    engine.settings = settings  # type: ignore[attr-defined]
    return engine
