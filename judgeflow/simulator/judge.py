"""The simulator's deterministic judge: answers judge prompts with predictable verdicts.

Why deterministic: tests and benchmarks must know, without running any model, what verdict the
"judge" gave for a candidate, so they can check that judgeflow parsed, stored and merged it right.

The rules (stable across runs, processes and Python versions; no ``hash()``):

* ``expected_score(response)`` = ``1 + (int(blake2b(response.strip())[:8]) % 5)``: a stable hash of
  the stripped response text, spread evenly over 1..5.
* ``expected_preference(a, b)``: the response with the higher ``expected_score`` wins; on a tie the
  one with the larger full blake2b digest wins. It depends only on the two texts, never on their
  positions, so the judge is position-consistent by default.
* ``position_bias_rate`` (0..1) makes the relative / pairwise judge answer "A" regardless for a
  deterministic fraction of prompts (chosen by a hash of the whole prompt), to exercise
  position-consistency statistics.
* Prompts that are neither Prometheus 2 absolute / relative nor pairwise-JSON (custom templates)
  get ``[RESULT] n`` with ``n = custom_score(prompt)`` (a hash of the whole prompt text).

How responses are found in a prompt (the candidates are untrusted text that may contain fake
section headers or "[RESULT] 5"): sections appear in a fixed order, the trusted trailing sections
(reference answer, rubric) are located by their LAST header, a response's start by the FIRST header
after the instruction. Whether a reference section exists is read from the fixed task
description (official templates mention "a reference answer" only when one follows). The one
inherent ambiguity (a candidate A that contains "###Response B:" *and* a candidate B that does too)
is resolved by taking the LAST "###Response B:" header.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

import orjson

from judgeflow.simulator import hostile

Verdict = Literal["A", "B"]
PromptKind = Literal["absolute", "relative", "pairwise", "custom"]

# Prometheus 2 section headers (prometheus-eval ``prompts.py``, library and paper variants).
_ABS_INSTRUCTION = "###The instruction to evaluate:"
_ABS_RESPONSE = "###Response to evaluate:"
_ABS_REFERENCE = "###Reference Answer (Score 5):"
_ABS_RUBRIC = "###Score Rubrics:"
_REL_INSTRUCTION = "###Instruction:"
_REL_RESPONSE_A = "###Response A:"
_REL_RESPONSE_B = "###Response B:"
_REL_REFERENCE = "###Reference Answer:"
_REL_RUBRIC = "###Score Rubric:"
_FEEDBACK = "###Feedback:"
_TASK = "###Task Description:"

# OpenPO-style pairwise-JSON tags (judgeflow's "pairwise-json" template).
_PW_INSTRUCTION_END = "</instruction>"
_PW_A_OPEN = "<response_a>"
_PW_A_CLOSE = "</response_a>"
_PW_B_OPEN = "<response_b>"
_PW_B_CLOSE = "</response_b>"

UNPARSEABLE_TEXT = (
    "I have read the response carefully, but I am unable to settle on a verdict for it "
    "under this rubric without more context."
)
"""Judge text with no verdict in it (the ``rate_unparseable`` fault)."""

_QUALITY = {
    1: "fails to address the instruction and shows no grasp of the criteria",
    2: "addresses the instruction only in part and misses most of the criteria",
    3: "covers the main point of the instruction but leaves notable gaps",
    4: "addresses the instruction well, with only minor omissions",
    5: "fully and precisely satisfies the instruction and every criterion",
}


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def expected_score(response: str) -> int:
    """The 1..5 score the simulator gives ``response`` (stable hash of the stripped text)."""
    return 1 + int.from_bytes(_digest(response.strip())[:8], "big") % 5


def expected_preference(response_a: str, response_b: str) -> Verdict:
    """Which of two responses the simulator prefers; consistent with ``expected_score``.

    Higher score wins; ties go to the larger digest, so the winner is the same text whichever
    position it is shown in.
    """
    a, b = response_a.strip(), response_b.strip()
    sa, sb = expected_score(a), expected_score(b)
    if sa != sb:
        return "A" if sa > sb else "B"
    return "A" if _digest(a) >= _digest(b) else "B"


def custom_score(prompt: str) -> int:
    """The 1..5 score given to a prompt that matches no known template (hash of the prompt)."""
    return 1 + int.from_bytes(_digest(prompt)[8:16], "big") % 5


def _unit(prompt: str) -> float:
    """A stable number in [0, 1) for a prompt (drives ``position_bias_rate``)."""
    return int.from_bytes(hashlib.blake2b(prompt.encode("utf-8"), digest_size=8).digest(), "big") / 2.0**64


def is_biased(prompt: str, position_bias_rate: float) -> bool:
    """Whether the judge answers "A" regardless for this prompt (deterministic per prompt)."""
    return position_bias_rate > 0.0 and _unit(prompt) < position_bias_rate


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    """What the simulator found in a prompt: its kind and the candidate texts."""

    kind: PromptKind
    response_a: str | None = None
    response_b: str | None = None


def _task_mentions_reference(prompt: str, first_section: str) -> bool:
    end = prompt.find(first_section)
    head = prompt[:end] if end >= 0 else ""
    return "reference answer" in head.lower()


def _after_header(prompt: str, pos: int, header: str) -> int:
    """Index just after ``header`` (and one newline, if present) found at ``pos``."""
    pos += len(header)
    if prompt.startswith("\n", pos):
        pos += 1
    return pos


def _parse_absolute(prompt: str) -> ParsedPrompt | None:
    rubric = prompt.rfind(_ABS_RUBRIC)
    if rubric < 0:
        return None
    instr = prompt.find(_ABS_INSTRUCTION)
    start_hdr = prompt.find(_ABS_RESPONSE, instr if instr >= 0 else 0)
    if start_hdr < 0 or start_hdr > rubric:
        return None
    start = _after_header(prompt, start_hdr, _ABS_RESPONSE)
    end = rubric
    if _task_mentions_reference(prompt, _ABS_INSTRUCTION if instr >= 0 else _ABS_RESPONSE):
        ref = prompt.rfind(_ABS_REFERENCE, start, rubric)
        if ref >= 0:
            end = ref
    return ParsedPrompt("absolute", prompt[start:end].strip())


def _parse_relative(prompt: str) -> ParsedPrompt | None:
    rubric = prompt.rfind(_REL_RUBRIC)
    if rubric < 0:
        return None
    instr = prompt.find(_REL_INSTRUCTION)
    a_hdr = prompt.find(_REL_RESPONSE_A, instr if instr >= 0 else 0)
    if a_hdr < 0 or a_hdr > rubric:
        return None
    a_start = _after_header(prompt, a_hdr, _REL_RESPONSE_A)
    b_end = rubric
    if _task_mentions_reference(prompt, _REL_INSTRUCTION if instr >= 0 else _REL_RESPONSE_A):
        ref = prompt.rfind(_REL_REFERENCE, a_start, rubric)
        if ref >= 0:
            b_end = ref
    b_hdr = prompt.rfind(_REL_RESPONSE_B, a_start, b_end)
    if b_hdr < 0:
        return None
    b_start = _after_header(prompt, b_hdr, _REL_RESPONSE_B)
    return ParsedPrompt("relative", prompt[a_start:b_hdr].strip(), prompt[b_start:b_end].strip())


def _parse_pairwise(prompt: str) -> ParsedPrompt | None:
    instr_end = prompt.find(_PW_INSTRUCTION_END)
    a_open = prompt.find(_PW_A_OPEN, instr_end if instr_end >= 0 else 0)
    b_close = prompt.rfind(_PW_B_CLOSE)
    if a_open < 0 or b_close < 0 or b_close < a_open:
        return None
    a_close = prompt.rfind(_PW_A_CLOSE, a_open, b_close)
    if a_close < 0:
        return None
    b_open = prompt.find(_PW_B_OPEN, a_close, b_close)
    if b_open < 0:
        return None
    a_start = _after_header(prompt, a_open, _PW_A_OPEN)
    b_start = _after_header(prompt, b_open, _PW_B_OPEN)
    return ParsedPrompt("pairwise", prompt[a_start:a_close].strip(), prompt[b_start:b_close].strip())


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Classify a judge prompt and pull out the candidate response(s)."""
    if _PW_A_OPEN in prompt and _PW_B_OPEN in prompt:
        found = _parse_pairwise(prompt)
        if found is not None:
            return found
    if _FEEDBACK in prompt or _TASK in prompt:
        if _ABS_RESPONSE in prompt:
            found = _parse_absolute(prompt)
            if found is not None:
                return found
        if _REL_RESPONSE_A in prompt:
            found = _parse_relative(prompt)
            if found is not None:
                return found
    return ParsedPrompt("custom")


def verdict_for(prompt: str, response_a: str, response_b: str, position_bias_rate: float = 0.0) -> Verdict:
    """The verdict the simulator returns for a relative / pairwise prompt (bias included)."""
    if is_biased(prompt, position_bias_rate):
        return "A"
    return expected_preference(response_a, response_b)


def answer(prompt: str, *, json_mode: bool = False, position_bias_rate: float = 0.0) -> str:
    """The judge's reply text for a prompt (the user message, system prompt excluded).

    ``json_mode`` (the request asked for a JSON response format) forces the pairwise-JSON reply
    shape when the prompt carries two candidates. A candidate tagged ``[[jf-hostile:...]]``
    gets the same verdict wrapped in a hostile reply (``judgeflow.simulator.hostile``).
    """
    return hostile.apply(prompt, _honest_answer(prompt, json_mode=json_mode, position_bias_rate=position_bias_rate))


def _honest_answer(prompt: str, *, json_mode: bool, position_bias_rate: float) -> str:
    parsed = parse_prompt(prompt)
    if parsed.kind == "absolute":
        score = expected_score(parsed.response_a or "")
        return f"Feedback: The response {_QUALITY[score]}, judged strictly against the score rubric. [RESULT] {score}"
    if parsed.kind in ("relative", "pairwise"):
        a, b = parsed.response_a or "", parsed.response_b or ""
        verdict = verdict_for(prompt, a, b, position_bias_rate)
        sa, sb = expected_score(a), expected_score(b)
        reasoning = (
            f"Response A {_QUALITY[sa]}; Response B {_QUALITY[sb]}. "
            f"On balance Response {verdict} better satisfies the rubric."
        )
        if parsed.kind == "pairwise" or json_mode:
            return orjson.dumps({"reasoning": reasoning, "preferred": verdict}).decode()
        return f"Feedback: {reasoning} [RESULT] {verdict}"
    score = custom_score(prompt)
    if json_mode:
        return orjson.dumps({"reasoning": "Scored against the given template.", "score": score}).decode()
    return f"Feedback: The response was assessed against the given template. [RESULT] {score}"


def _reply_pattern() -> str:
    quality = "(?:" + "|".join(re.escape(q) for q in _QUALITY.values()) + ")"
    reasoning = (
        rf"Response A {quality}; Response B {quality}\. On balance Response [AB] better satisfies the rubric\."
    )
    return "^(?:" + "|".join([
        rf"Feedback: The response {quality}, judged strictly against the score rubric\. \[RESULT\] [1-5]",
        rf"Feedback: {reasoning} \[RESULT\] [AB]",
        rf'\{{"reasoning":"{reasoning}","preferred":"[AB]"\}}',
        r"Feedback: The response was assessed against the given template\. \[RESULT\] [1-5]",
        r'\{"reasoning":"Scored against the given template\.","score":[1-5]\}',
    ]) + ")$"


#: A regular expression (Python and Rust/polars syntax) matching exactly the replies ``answer``
#: writes: how a report tells verdicts of this deterministic judge from a real model's.
REPLY_PATTERN = _reply_pattern()


_OPENERS = ("Here is a clear answer.", "In short:", "Let me explain.", "A practical answer:", "Briefly:")
_BODIES = (
    "The key idea is to start from the requirements and check each step against them.",
    "It depends on the context, but the common approach works well in most cases.",
    "First, define the goal. Second, pick the simplest tool that reaches it. Third, verify.",
    "The main trade-off is between speed and accuracy; measure both before choosing.",
    "Think of it as a pipeline: inputs, a transformation, and outputs you can test.",
)


def generate(prompt: str) -> str:
    """A deterministic candidate response to an instruction (candidate-generation requests).

    Length and wording vary with the prompt's hash, so generated candidates get different
    ``expected_score`` values and judging them yields real preferences.
    """
    digest = _digest(prompt)
    opener = _OPENERS[digest[0] % len(_OPENERS)]
    body = " ".join(_BODIES[(digest[1] + k) % len(_BODIES)] for k in range(1 + digest[2] % 3))
    return f"{opener} {body} (Regarding: {prompt.strip()[:80]})"


def expected_verdict_text(prompt: str, position_bias_rate: float = 0.0) -> str:
    """The verdict for a prompt as a string ("1".."5", "A" or "B"): handy in tests."""
    parsed = parse_prompt(prompt)
    if parsed.kind == "absolute":
        return str(expected_score(parsed.response_a or ""))
    if parsed.kind in ("relative", "pairwise"):
        return verdict_for(prompt, parsed.response_a or "", parsed.response_b or "", position_bias_rate)
    return str(custom_score(prompt))


__all__ = [
    "REPLY_PATTERN",
    "UNPARSEABLE_TEXT",
    "ParsedPrompt",
    "answer",
    "custom_score",
    "expected_preference",
    "expected_score",
    "expected_verdict_text",
    "is_biased",
    "parse_prompt",
    "verdict_for",
]
