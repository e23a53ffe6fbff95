"""Read a judge's reply into a score or an A/B verdict, or say exactly why it cannot.

The Prometheus patterns follow prometheus-eval 0.1.20's ``parser.py``: case-insensitive, and
anchored at the very end of the reply. Anchoring matters: a reply that quotes a candidate
saying "[RESULT] 5" and then ends with "[RESULT] 2" is a 2, and the prompt's own "Score 5"
lines can never match. Unlike prometheus-eval (whose relative pattern uses ``$`` under
MULTILINE and so accepts a verdict at the end of *any* line) judgeflow anchors at the end of
the whole text (``\\Z``). Nothing is guessed: a reply without a verdict at its end raises
``ParseError`` with the reason, so the caller can retry or record the failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import orjson

from judgeflow.specs import JudgeSpec

VerdictAB = Literal["A", "B"]


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """What a reply says: a 1-5 ``score`` (absolute) or an A/B ``verdict`` (pairwise)."""

    score: float | None = None
    verdict: VerdictAB | None = None
    feedback: str | None = None


class ParseError(ValueError):
    """The reply holds no valid verdict; ``reason`` says why (kept in the judgment record)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_ABSOLUTE = re.compile(
    r"""
    (?:                          # a marker
        \[RESULT\]|\[SCORE\]|
        Score:?|score:?|
        Result:?|\[Result\]:?|
        score\s+of
    )
    \s*
    (?:\(|\[|\s)*                # opening brackets or whitespace
    (\d+)                        # the score
    (?:
        (?:\)|\]|\s|$)|          # closing bracket, whitespace or end
        (?:/\s*5|\s*out\s*of\s*5)  # "/5" or "out of 5"
    )?
    \s*\Z                        # ... and nothing after it but whitespace
    """,
    re.IGNORECASE | re.VERBOSE,
)

_RELATIVE = re.compile(
    r"""
    (?:
        \[RESULT\]|\[RESULT:\s*|
        \[Response\s+|
        \[Result\](?:\s+Response)?|
        \[Result:\s*|
        (?:^|\n)Result:?\s*      # "Result:" at the start of a line
    )
    \s*
    (A|B)
    (?:\])?
    \s*\Z
    """,
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)

_TAIL = 80  # characters of the reply quoted in error messages


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TAIL else "..." + text[-_TAIL:]


def _require_text(text: str | None) -> str:
    if text is None or not text.strip():
        raise ParseError("empty reply")
    return text


def parse_absolute(text: str | None) -> ParsedReply:
    """A 1-5 score from the end of a Prometheus absolute-grading reply."""
    text = _require_text(text)
    match = _ABSOLUTE.search(text)
    if match is None:
        raise ParseError(f"no score marker ([RESULT] n, Score: n, n/5 ...) at the end of the reply: {_tail(text)!r}")
    score = int(match.group(1))
    if not 1 <= score <= 5:
        raise ParseError(f"score {score} is outside 1-5")
    return ParsedReply(score=float(score), feedback=text[: match.start()].strip() or None)


def parse_relative(text: str | None) -> ParsedReply:
    """An A/B verdict from the end of a Prometheus relative-grading reply."""
    text = _require_text(text)
    match = _RELATIVE.search(text)
    if match is None:
        raise ParseError(f"no verdict ([RESULT] A/B, [Response B], Result: A ...) at the end of the reply: {_tail(text)!r}")
    verdict: VerdictAB = "A" if match.group(1).upper() == "A" else "B"
    return ParsedReply(verdict=verdict, feedback=text[: match.start()].strip() or None)


_FENCE = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.DOTALL | re.IGNORECASE)


def parse_pairwise_json(text: str | None) -> ParsedReply:
    """``{"reasoning": ..., "preferred": "A"|"B"}``, bare, fenced or surrounded by prose."""
    text = _require_text(text)
    data = _load_json_object(text)
    if data is None:
        raise ParseError(f"reply is not a JSON object: {_tail(text)!r}")
    if "preferred" not in data:
        raise ParseError(f"JSON reply has no 'preferred' key (keys: {sorted(data)})")
    preferred = data["preferred"]
    value = preferred.strip().upper() if isinstance(preferred, str) else None
    if value not in ("A", "B"):
        raise ParseError(f"'preferred' must be \"A\" or \"B\", got {preferred!r}")
    reasoning = data.get("reasoning")
    feedback = reasoning.strip() if isinstance(reasoning, str) and reasoning.strip() else None
    return ParsedReply(verdict="A" if value == "A" else "B", feedback=feedback)


def _load_json_object(text: str) -> dict | None:
    stripped = text.strip()
    candidates = [stripped]
    fenced = _FENCE.search(stripped)
    if fenced:
        candidates.append(fenced.group(1))
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        try:
            data = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict):
            return data
    return None


def parse_custom(text: str | None, regex: str, kind: str = "absolute") -> ParsedReply:
    """The LAST match of ``regex`` (its first group, or the whole match) is the verdict.

    Why the last: like the anchored Prometheus patterns, a verdict quoted from a candidate
    earlier in the reply must not win over the judge's own final one. For ``absolute`` the
    value must be a number; otherwise it must be A or B.
    """
    text = _require_text(text)
    try:
        pattern = re.compile(regex, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise ParseError(f"score_regex does not compile: {exc}") from exc
    last = None
    for last in pattern.finditer(text):
        pass
    if last is None:
        raise ParseError(f"score_regex {regex!r} does not match the reply: {_tail(text)!r}")
    value = (last.group(1) if pattern.groups else last.group(0)) or ""
    value = value.strip()
    feedback = text[: last.start()].strip() or None
    if kind == "absolute":
        try:
            score = float(value)
        except ValueError:
            raise ParseError(f"score_regex matched {value!r}, which is not a number") from None
        if score != score or score in (float("inf"), float("-inf")):
            raise ParseError(f"score_regex matched {value!r}, which is not a finite number")
        return ParsedReply(score=score, feedback=feedback)
    upper = value.upper()
    if upper.startswith("RESPONSE"):
        upper = upper[len("RESPONSE") :].strip()
    if upper not in ("A", "B"):
        raise ParseError(f"score_regex matched {value!r}; a pairwise verdict must be A or B")
    return ParsedReply(verdict="A" if upper == "A" else "B", feedback=feedback)


def parse_reply(spec: JudgeSpec, text: str | None) -> ParsedReply:
    """Parse ``text`` the way ``spec``'s template asked the judge to answer."""
    fmt = "absolute" if spec.kind == "absolute" else "relative"
    if spec.template == "pairwise-json":
        return parse_pairwise_json(text)
    if spec.template == "custom" and spec.score_regex:
        return parse_custom(text, spec.score_regex, fmt)
    return parse_absolute(text) if fmt == "absolute" else parse_relative(text)
