"""Read a judge's reply into a score or an A/B verdict, or say exactly why it cannot.

The Prometheus patterns follow prometheus-eval 0.1.20's ``parser.py``: case-insensitive, and
anchored at the very end of the reply. Anchoring matters: a reply that quotes a candidate
saying "[RESULT] 5" and then ends with "[RESULT] 2" is a 2, and the prompt's own "Score 5"
lines can never match. Unlike prometheus-eval (whose relative pattern uses ``$`` under
MULTILINE and so accepts a verdict at the end of *any* line) judgeflow anchors at the end of
the whole text (``\\Z``). Nothing is guessed: a reply without a verdict at its end raises
``ParseError`` with the reason, so the caller can retry or record the failure.

Every parser here runs in time linear in the reply, because replies are untrusted text and the
live path parses them on its event loop. prometheus-eval's patterns (and judgeflow's own, until
they were rewritten) search forward from every position with nested ambiguous quantifiers
(``\\s*(?:\\(|\\[|\\s)*``), so ``Score:`` followed by N spaces costs O(N^2): 38 s at 32k
characters, hours at 1 MB. A verdict anchored at the end can only be read from the end, so the
patterns are written *reversed* and matched once at the start of the reversed reply, with
possessive quantifiers: one pass, no backtracking into a run. They accept exactly the replies
the forward patterns accept and return the same score, verdict and feedback (a seeded
differential test against the forward patterns keeps it so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import orjson

from judgeflow.specs import JudgeSpec

if TYPE_CHECKING:
    import regex

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


# The forward pattern (prometheus-eval's absolute family, as judgeflow used it):
#     (?:\[RESULT\]|\[SCORE\]|Score:?|score:?|Result:?|\[Result\]:?|score\s+of)
#     \s*(?:\(|\[|\s)*(\d+)(?:(?:\)|\]|\s|$)|(?:/\s*5|\s*out\s*of\s*5))?\s*\Z
# read right to left. ``\s*(?:\(|\[|\s)*`` is the one class ``[\s(\[]``; the ``\s``/``$`` closers
# are absorbed by the trailing ``\s*``. Alternatives that share a suffix are ordered longest
# first (``[Result]:`` before ``Result:``), so the match starts where the forward search's
# leftmost match starts, and the feedback (the text before it) is the same.
_ABSOLUTE_REVERSED = re.compile(
    r"""
    \s*+                                        # trailing whitespace
    (?: 5 \s*+ /  |  5 \s*+ fo \s*+ tuo \s*+  |  [)\]] )?   # "/5", "out of 5" or a closing bracket
    (\d++)                                      # the score, reversed
    [\s(\[]*+                                   # whitespace and opening brackets
    (?:                                         # the marker, reversed
        :?\]tluser\[  |  \]erocs\[  |  :?erocs  |  :?tluser  |  fo \s++ erocs
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)

# The forward relative pattern, read right to left:
#     (?:\[RESULT\]|\[RESULT:\s*|\[Response\s+|\[Result\](?:\s+Response)?|\[Result:\s*|
#        (?:^|\n)Result:?\s*)\s*(A|B)(?:\])?\s*\Z        (IGNORECASE, MULTILINE)
# A line-start ``Result`` begins at the newline before it (the forward search's leftmost
# match consumes it) or at the start of the reply (``\Z`` of the reversed text).
_RELATIVE_REVERSED = re.compile(
    r"""
    \s*+ \]?+ (a|b) \s*+                        # trailing whitespace, "]", the verdict
    (?:
        (?<=\s) esnopser\[                      # "[Response" + at least one whitespace
      | (?: esnopser \s++ )? \]tluser\[         # "[Result]", "[RESULT]", "[Result] Response"
      | :tluser\[                               # "[RESULT:", "[Result:"
      | :?tluser (?: \n | \Z )                  # "Result:" at the start of a line
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)

_TAIL = 80  # characters of the reply quoted in error messages


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TAIL else "..." + text[-_TAIL:]


def _require_text(text: str | None) -> str:
    if text is None or not text.strip():
        raise ParseError("empty reply")
    return text


def _shown(digits: str) -> str:
    """A number for an error message: whole when short, else its head and its length."""
    return digits if len(digits) <= 12 else f"{digits[:12]}... ({len(digits)} digits)"


def parse_absolute(text: str | None) -> ParsedReply:
    """A 1-5 score from the end of a Prometheus absolute-grading reply."""
    text = _require_text(text)
    match = _ABSOLUTE_REVERSED.match(text[::-1])
    if match is None:
        raise ParseError(f"no score marker ([RESULT] n, Score: n, n/5 ...) at the end of the reply: {_tail(text)!r}")
    digits = match.group(1)[::-1]
    try:
        score = int(digits)
    except ValueError:  # more digits than Python converts (4300): far outside 1-5 anyway
        raise ParseError(f"score {_shown(digits)} is outside 1-5") from None
    if not 1 <= score <= 5:
        raise ParseError(f"score {_shown(str(score))} is outside 1-5")
    start = len(text) - match.end()
    return ParsedReply(score=float(score), feedback=text[:start].strip() or None)


def parse_relative(text: str | None) -> ParsedReply:
    """An A/B verdict from the end of a Prometheus relative-grading reply."""
    text = _require_text(text)
    match = _RELATIVE_REVERSED.match(text[::-1])
    if match is None:
        raise ParseError(f"no verdict ([RESULT] A/B, [Response B], Result: A ...) at the end of the reply: {_tail(text)!r}")
    verdict: VerdictAB = "A" if match.group(1).upper() == "A" else "B"
    start = len(text) - match.end()
    return ParsedReply(verdict=verdict, feedback=text[:start].strip() or None)


# --- pairwise JSON ---------------------------------------------------------------------------

#: Most strings and brackets the final JSON object may hold. A verdict is a small object
#: (reasoning, preferred); the bound keeps a reply built of a million brackets cheap to refuse.
MAX_JSON_TOKENS = 10_000

_STRUCTURAL = re.compile(r'[{}\[\]"]')
# A JSON string read backwards from its closing quote: a quote is escaped when an odd number
# of backslashes precedes it, i.e. follows it in the reversed text.
_STRING_REVERSED = re.compile(r'"(?:[^"]++|"(?=\\(?:\\\\)*+(?!\\)))*+"')


def _final_object_start(text: str, end: int) -> int | str:
    """Where the JSON object closed by the ``}`` at ``end`` opens, or why none does.

    Reads backwards from ``end``, skipping whole strings (so braces inside them do not count)
    and matching brackets, until the ``{`` that balances it: one pass over the final object
    only, whatever precedes it.
    """
    reversed_text = text[end::-1]
    expect: list[str] = []
    pos = tokens = 0
    while True:
        found = _STRUCTURAL.search(reversed_text, pos)
        if found is None:
            return "its last '}' closes no JSON object"
        tokens += 1
        if tokens > MAX_JSON_TOKENS:
            return f"its final JSON object holds more than {MAX_JSON_TOKENS} strings and brackets"
        char, at = found.group(), found.start()
        if char == '"':
            string = _STRING_REVERSED.match(reversed_text, at)
            if string is None:
                return "its final JSON object has an unterminated string"
            pos = string.end()
            continue
        if char in "}]":
            expect.append("{" if char == "}" else "[")
        elif not expect or expect.pop() != char:
            return "its final JSON object has unbalanced brackets"
        elif not expect:
            return end - at
        pos = at + 1


def parse_pairwise_json(text: str | None) -> ParsedReply:
    """``{"reasoning": ..., "preferred": "A"|"B"}``: the reply's final JSON object is the verdict.

    The final object is the one closed by the reply's last ``}``, read backwards to the ``{``
    that opens it; prose, a code fence or whitespace may follow it, another ``{`` may not.
    Why the final one: a judge that quotes a candidate (or shows an example, or a fenced draft)
    holding ``{"preferred": "A"}`` and then answers ``{"preferred": "B"}`` means B, as the last
    ``[RESULT]`` wins for Prometheus. Nothing earlier is ever read instead: a final object that
    is broken (truncated, single-quoted), lacks ``preferred``, or is followed by a stray ``{``
    is a ``ParseError`` (re-asked, then recorded), never a fallback to an earlier, possibly
    quoted, object. Only the final object is scanned, once, so the cost is linear in the reply
    (a reversal and a search), and an object of more than ``MAX_JSON_TOKENS`` strings and
    brackets is refused rather than walked.
    """
    text = _require_text(text)
    end = text.rfind("}")
    if end < 0:
        raise ParseError(f"reply is not a JSON object: {_tail(text)!r}")
    if text.find("{", end + 1) >= 0:
        raise ParseError(f"reply opens '{{' again after its last JSON object (a broken final answer?): {_tail(text)!r}")
    start = _final_object_start(text, end)
    if isinstance(start, str):
        raise ParseError(f"reply is not a JSON object: {start}: {_tail(text)!r}")
    try:
        data = orjson.loads(text[start : end + 1])
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"the reply's final JSON object does not parse ({exc}): {_tail(text)!r}") from None
    if "preferred" not in data:
        raise ParseError(f"JSON reply has no 'preferred' key (keys: {sorted(data)[:20]})")
    preferred = data["preferred"]
    value = preferred.strip().upper() if isinstance(preferred, str) else None
    if value not in ("A", "B"):
        raise ParseError(f"'preferred' must be \"A\" or \"B\", got {_tail(repr(preferred))}")
    reasoning = data.get("reasoning")
    feedback = reasoning.strip() if isinstance(reasoning, str) and reasoning.strip() else None
    return ParsedReply(verdict="A" if value == "A" else "B", feedback=feedback)


# --- custom score_regex ----------------------------------------------------------------------

#: Wall-clock bound on one ``score_regex`` search of one reply.
CUSTOM_REGEX_TIMEOUT_S = 0.5


def compile_score_regex(pattern: str) -> regex.Pattern[str]:
    """Compile a user's ``score_regex`` the way ``parse_custom`` runs it (raises ``regex.error``).

    ``regex`` is imported here: only a judge with a custom ``score_regex`` needs it.
    """
    import regex

    return regex.compile(pattern, regex.IGNORECASE | regex.MULTILINE)


def parse_custom(text: str | None, pattern: str, kind: str = "absolute") -> ParsedReply:
    """The LAST match of ``pattern`` (its first group, or the whole match) is the verdict.

    Why the last: like the anchored Prometheus patterns, a verdict quoted from a candidate
    earlier in the reply must not win over the judge's own final one. For ``absolute`` the
    value must be a number; otherwise it must be A or B.

    Why the ``regex`` engine with a timeout: the pattern is the user's and may backtrack
    without bound (``(\\s*\\d+\\s*)+$`` on a hostile reply runs for hours), and the reply is
    untrusted. A linear-time engine (RE2) would bound it by construction, but it rejects
    lookarounds and backreferences and reads ``\\d``/``\\s`` as ASCII only, so patterns users
    wrote for Python (and replies with non-breaking spaces) would silently stop matching.
    ``regex`` runs Python ``re`` syntax with the same meaning (version-0 semantics), avoids
    many blow-ups ``re`` has (``score:\\s*(\\d+)\\s*$`` stays linear), and for the rest stops
    after ``CUSTOM_REGEX_TIMEOUT_S``: the reply is then a ``ParseError`` (re-asked, then
    recorded), the event loop is never held longer, and the message says to simplify the
    pattern. Ordinary patterns read a 1 MB reply well inside the bound.
    """
    import regex

    text = _require_text(text)
    try:
        compiled = compile_score_regex(pattern)
    except regex.error as exc:
        raise ParseError(f"score_regex does not compile: {exc}") from exc
    last = None
    try:
        for last in compiled.finditer(text, timeout=CUSTOM_REGEX_TIMEOUT_S):
            pass
    except TimeoutError:
        raise ParseError(
            f"score_regex {pattern!r} ran past {CUSTOM_REGEX_TIMEOUT_S:g} s on a {len(text)}-character reply; "
            "simplify it (no nested quantifiers such as (\\s*\\d+)+) or anchor it"
        ) from None
    if last is None:
        raise ParseError(f"score_regex {pattern!r} does not match the reply: {_tail(text)!r}")
    value = (last.group(1) if compiled.groups else last.group(0)) or ""
    value = value.strip()
    feedback = text[: last.start()].strip() or None
    if kind == "absolute":
        try:
            score = float(value)
        except ValueError:
            raise ParseError(f"score_regex matched {_tail(value)!r}, which is not a number") from None
        if score != score or score in (float("inf"), float("-inf")):
            raise ParseError(f"score_regex matched {_tail(value)!r}, which is not a finite number")
        return ParsedReply(score=score, feedback=feedback)
    upper = value.upper()
    if upper.startswith("RESPONSE"):
        upper = upper[len("RESPONSE") :].strip()
    if upper not in ("A", "B"):
        raise ParseError(f"score_regex matched {_tail(value)!r}; a pairwise verdict must be A or B")
    return ParsedReply(verdict="A" if upper == "A" else "B", feedback=feedback)


def parse_reply(spec: JudgeSpec, text: str | None) -> ParsedReply:
    """Parse ``text`` the way ``spec``'s template asked the judge to answer."""
    fmt = "absolute" if spec.kind == "absolute" else "relative"
    if spec.template == "pairwise-json":
        return parse_pairwise_json(text)
    if spec.template == "custom" and spec.score_regex:
        return parse_custom(text, spec.score_regex, fmt)
    return parse_absolute(text) if fmt == "absolute" else parse_relative(text)
