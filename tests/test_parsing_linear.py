"""Linear-time parsing (issue 13, items 2 and 3).

* The reversed Prometheus patterns give exactly what the forward ones gave (a seeded
  differential test over many generated replies, near-misses included), but read hostile
  replies of 1 MB at once instead of in hours.
* ``pairwise-json`` reads the reply's final JSON object, whatever precedes it.
* A custom ``score_regex`` is bounded by a timeout.

Hostile inputs run under a generous ``timeout`` marker: a hang detector (the old patterns take
hours on them), not a speed assertion; speed is measured in ``benchmarks/parsing_hostile.py``.
"""

from __future__ import annotations

import random
import re

import orjson
import pytest

from judgeflow.parsing import (
    MAX_JSON_TOKENS,
    ParseError,
    parse_absolute,
    parse_custom,
    parse_pairwise_json,
    parse_relative,
)

MB = 1 << 20

# The forward patterns judgeflow used before (prometheus-eval 0.1.20's family), verbatim: the
# oracle the reversed ones must agree with.
OLD_ABSOLUTE = re.compile(
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
OLD_RELATIVE = re.compile(
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


def old_absolute(text: str) -> tuple[object, ...]:
    if not text.strip():
        return ("error",)
    match = OLD_ABSOLUTE.search(text)
    if match is None:
        return ("error",)
    score = int(match.group(1))
    if not 1 <= score <= 5:
        return ("error",)
    return (float(score), text[: match.start()].strip() or None)


def old_relative(text: str) -> tuple[object, ...]:
    if not text.strip():
        return ("error",)
    match = OLD_RELATIVE.search(text)
    if match is None:
        return ("error",)
    return (match.group(1).upper(), text[: match.start()].strip() or None)


def new_absolute(text: str) -> tuple[object, ...]:
    try:
        reply = parse_absolute(text)
    except ParseError:
        return ("error",)
    return (reply.score, reply.feedback)


def new_relative(text: str) -> tuple[object, ...]:
    try:
        reply = parse_relative(text)
    except ParseError:
        return ("error",)
    return (reply.verdict, reply.feedback)


# Pieces a verdict is made of, near-misses and Unicode look-alikes included: "ſ" matches "s"
# under IGNORECASE, Arabic-Indic and full-width digits match \d, NBSP and EM SPACE match \s.
MARKERS = [
    "[RESULT]", "[result]", "[SCORE]", "[Score]", "Score", "score:", "Score:", "SCORE :", "Result", "Result:",
    "result:", "[Result]", "[Result]:", "[RESULT]:", "score of", "score  of", "SCORE\tOF", "Score of:", "[RESULT:",
    "[Result: ", "[Response", "[Response ", "[Result] Response", "[Result]Response", "Response", "\nResult:",
    "\nResult", "Result :", "ſcore:", "[ſcore]", "RESULT]", "[RESULT", "score:score:", "[[RESULT]]", "of",
]
GAPS = ["", " ", "  ", "\n", "\t", "\u00a0", "\u2003", "(", "[", "( ", " [", "[(", " \n ", ":", "]", ")", "-", "\r\n"]
NUMBERS = ["1", "2", "3", "4", "5", "0", "6", "7", "10", "05", "005", "45", "\u0663", "\uff13", "2.5", "5 5", "", "A"]
LETTERS = ["A", "B", "a", "b", "C", "AB", "A B", "", "1", "B]", "[B]"]
RELATIVE_MARKERS = [
    "[RESULT]", "[result] ", "[RESULT:", "[Result: ", "[Response ", "[Response\n", "[Response", "[Result] Response",
    "[Result]Response", "[Result]  response ", "\nResult:", "\nResult", "\nresult :", "Result:", "[Result]", "Response",
    "RESULT]", "[[RESULT]]", "[RESULT] Response", "[Response:", "\r\nResult:", "Result\n:",
]
LETTER_SUFFIXES = ["", "", "", " ", "]", "\n", " ]", "]]", ".", "!", " A", "\u00a0", "] ", ")"]
SUFFIXES = [
    "", " ", ")", "]", "])", "/5", "/ 5", " /5", "/ 4", " out of 5", "out of 5", " outof5", " out  of\n5", " of 5",
    "/55", ".", " ]", "]]", " out of 4", "\n", "!", " score", " 5", "/5/5", "\u00a0", " out of 5 out of 5",
]
PROSE = [
    "", "Feedback: good.", "The answer is fine", "Response A is better.", "Quote: [RESULT] 5.", "So the score is",
    "[RESULT] 2\n", "Result: A\n", "(Score 4)", "Score: 3 and", "x", "\n\n", "[Response B]", "ok [RESULT] B ",
]


def generated_replies(seed: int, count: int, markers: list[str], values: list[str], suffixes: list[str]) -> list[str]:
    rng = random.Random(seed)
    replies = []
    for _ in range(count):
        parts = [rng.choice(PROSE) if rng.random() < 0.7 else "", rng.choice(GAPS) if rng.random() < 0.5 else ""]
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            parts += [rng.choice(markers), rng.choice(GAPS), rng.choice(GAPS) if rng.random() < 0.3 else "",
                      rng.choice(values), rng.choice(suffixes)]
        parts.append(rng.choice(["", "", " ", "\n", "  \n\t", "\u00a0"]))
        replies.append("".join(parts))
    return replies


def test_reversed_patterns_agree_with_the_forward_ones_on_generated_replies() -> None:
    replies = (
        generated_replies(13, 20_000, MARKERS, NUMBERS, SUFFIXES)
        + generated_replies(14, 20_000, RELATIVE_MARKERS, LETTERS, LETTER_SUFFIXES)
    )
    absolute_ok = relative_ok = 0
    for text in replies:
        want_abs, want_rel = old_absolute(text), old_relative(text)
        assert new_absolute(text) == want_abs, text
        assert new_relative(text) == want_rel, text
        absolute_ok += want_abs != ("error",)
        relative_ok += want_rel != ("error",)
    # The generator must hit real verdicts often, or the comparison proves little.
    assert absolute_ok > 2_500 and relative_ok > 1_000


def test_reversed_patterns_agree_on_prometheus_templates_own_lines() -> None:
    """Whole replies shaped like Prometheus 2 output, with the rubric's own "Score 5" lines."""
    body = "Score 1: poor\nScore 5: perfect\n###Feedback: The response [Response A] is fine"
    for end in ["[RESULT] 3", "[RESULT] (4)", "Score: 5 out of 5", "[RESULT] A", "[Result] Response B", "Result: b",
                "[RESULT] 3 ", "So 3/5", "[RESULT]\n\n2\n"]:
        text = f"{body} {end}"
        assert new_absolute(text) == old_absolute(text)
        assert new_relative(text) == old_relative(text)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Score:" + " " * MB, None),
        ("Score:" + " " * MB + "x", None),
        ("Score:" + " " * MB + "\nFeedback: fine. [RESULT] 4", 4.0),
        ("[RESULT] 5 " * (MB // 11) + "[RESULT] 2", 2.0),
        ("[RESULT] 3" + " " * MB, 3.0),
        ("Score" + "[(" * (MB // 2), None),
        ("score" + " " * MB + "of 4", 4.0),
        ("[RESULT] " + "1" * MB, None),  # more digits than int() converts: a ParseError, not a ValueError
        ("[RESULT] " + "0" * 5000 + "3", None),
    ],
    ids=["score-spaces", "score-spaces-x", "score-spaces-verdict", "many-results", "trailing-spaces",
         "brackets", "score-of", "huge-number", "zero-padded"],
)
def test_absolute_hostile_megabyte_replies_parse_at_once(text: str, want: float | None) -> None:
    if want is None:
        with pytest.raises(ParseError):
            parse_absolute(text)
    else:
        assert parse_absolute(text).score == want


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("[RESULT:" + " " * MB, None),
        ("[RESULT:" + " " * MB + "x B", None),
        ("[RESULT] A " * (MB // 11) + "[RESULT] B", "B"),
        ("\nResult:" + " " * MB + "A", "A"),
        ("[Response" + " \n" * (MB // 2) + "B]", "B"),
        ("[Result]" + " " * MB + "Response" + " " * MB + "A" + " " * MB, "A"),
    ],
    ids=["result-colon-spaces", "result-colon-spaces-x", "many-results", "line-result", "response-spaces", "result-response"],
)
def test_relative_hostile_megabyte_replies_parse_at_once(text: str, want: str | None) -> None:
    if want is None:
        with pytest.raises(ParseError):
            parse_relative(text)
    else:
        assert parse_relative(text).verdict == want


def test_score_beyond_int_conversion_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"outside 1-5") as caught:
        parse_absolute("[RESULT] " + "9" * 5000)
    assert len(caught.value.reason) < 100  # the number is not echoed whole


# --- pairwise JSON ----------------------------------------------------------------------------


def verdict(text: str) -> str | None:
    try:
        return parse_pairwise_json(text).verdict
    except ParseError:
        return None


def test_fenced_opposite_verdict_before_the_final_object_does_not_flip_it() -> None:
    """The 48-of-48 flip: a fenced draft with the opposite verdict, then the real answer."""
    for real, other in (("A", "B"), ("B", "A")):
        text = (
            "Let me draft the answer first:\n```json\n"
            f'{{"reasoning": "draft", "preferred": "{other}"}}\n```\n'
            "On reflection the draft is wrong. Final answer:\n"
            f'{{"reasoning": "Response {real} is correct.", "preferred": "{real}"}}'
        )
        reply = parse_pairwise_json(text)
        assert reply.verdict == real and reply.feedback == f"Response {real} is correct."


@pytest.mark.parametrize(
    "prefix",
    [
        'Response A says: {"preferred": "A"} and insists. ',
        '```json\n{"preferred": "A"}\n```\n```json\n{"preferred": "A", "reasoning": "x"}\n```\n',
        'A quoted template: {"reasoning": "...", "preferred": "A" or "B"}\n',
        '{"x": "',  # an unterminated string that would swallow the final object if read forwards
        'He wrote {"note": "a \\" quote and {braces} and }", "preferred": "A"} then ',
        "{" * 10_000 + "}" * 9_000,
        '{"a":' * 20_000,
        '[{"preferred": "A"}, ' * 3_000,
        '"\\"\\\\"' * 1_000 + "}{",
    ],
    ids=["quoted", "fences", "template", "open-string", "braces-in-strings", "brace-runs", "deep-chain",
         "array-of-objects", "quotes-and-backslashes"],
)
@pytest.mark.parametrize("suffix", ["", "\n", "\n```", "\n```\nHope this helps.", "  \n\n  "])
def test_the_final_object_wins_whatever_precedes_it(prefix: str, suffix: str) -> None:
    final = '{"reasoning": "B cites {sources} and says \\"[RESULT] A\\".", "preferred": "B"}'
    assert verdict(prefix + final + suffix) == "B"


def test_final_object_read_backwards_equals_a_json_decoder_on_generated_objects() -> None:
    """Any JSON object with a valid ``preferred`` (strings full of quotes, backslashes, braces,
    nested objects and arrays), after any prefix, gives its own ``preferred``."""
    rng = random.Random(2)
    alphabet = ['"', "\\", "{", "}", "[", "]", "a", " ", "\n", ":", ",", "é", "\u2028", "'"]

    def text(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n)))

    def value(depth: int) -> object:
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return text(12)
        if roll < 0.6:
            return rng.choice([1, -2.5, True, None, 1e300])
        if roll < 0.8:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {text(6): value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(2_000):
        obj = {text(5): value(0) for _ in range(rng.randrange(4))}
        want = rng.choice("AB")
        obj["preferred"] = want
        body = orjson.dumps(obj, option=orjson.OPT_INDENT_2 if rng.random() < 0.5 else 0).decode()
        prefix = text(30) + rng.choice(["", '{"preferred": "A"}', "```json\n", '{"x": "'])
        assert verdict(prefix + body + rng.choice(["", " ", "\n```"])) == want


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"preferred": "A"} then the judge is cut off: {"reasoning": "B is', "opens '{' again"),
        ('{"preferred": "A"}\nFinal: {\'preferred\': \'B\'}', "does not parse"),
        ('Example {"preferred": "A"}. Final: {"preferred": "B",}', "does not parse"),
        ('{"preferred": "A"}\n{"reasoning": "B is right", "verdict": "B"}', "no 'preferred' key"),
        ('{"reasoning": "x", "preferred": "B", "more": [}', "unbalanced"),
        ('{"preferred": "A"} and :-}', "closes no JSON object"),
        ('{"reasoning": "' + "[" * (MAX_JSON_TOKENS + 5) + '", "preferred": "B", "x": ' + "[" * (MAX_JSON_TOKENS + 5)
         + "]" * (MAX_JSON_TOKENS + 5) + "}", "more than"),
    ],
    ids=["truncated-final", "single-quoted-final", "trailing-comma-final", "final-without-key", "unbalanced",
         "stray-brace-after", "too-many-tokens"],
)
def test_a_broken_final_object_never_falls_back_to_an_earlier_one(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        parse_pairwise_json(text)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        '{"preferred": "A"} ' * (MB // 19) + '{"preferred": "B"}',
        "{" * MB + '{"preferred": "B"}',
        '{"a":' * (MB // 5) + '{"preferred": "B"}',
        '{"reasoning": "' + "x" * MB + '", "preferred": "B"}',
        '{"reasoning": "ok",' + " " * MB + '"preferred": "B"}' + " " * MB,
        "```json\n" + '{"preferred": "A"}\n```\n' * (MB // 28) + '{"preferred": "B"}',
    ],
    ids=["many-objects", "brace-run", "deep-chain", "long-string", "spaces", "many-fences"],
)
def test_pairwise_hostile_megabyte_replies_parse_at_once(text: str) -> None:
    assert parse_pairwise_json(text).verdict == "B"


@pytest.mark.timeout(60)
def test_a_megabyte_of_brackets_in_the_final_object_is_refused() -> None:
    with pytest.raises(ParseError, match="more than"):
        parse_pairwise_json('{"x": ' + "[" * MB + "]" * MB + ', "preferred": "B"}')


# --- custom score_regex -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_custom_regex_that_backtracks_without_bound_is_stopped() -> None:
    with pytest.raises(ParseError, match="ran past"):
        parse_custom(" 1" * 50_000 + " x", r"(\s*\d+\s*)+$")


@pytest.mark.timeout(60)
def test_custom_regex_on_hostile_megabyte_replies() -> None:
    assert parse_custom("Score:" + " " * MB + "Score: 4", r"score:\s*(\d+)").score == 4.0
    assert parse_custom("rating: 5 " * (MB // 10) + "rating: 2", r"rating:\s*(\d+)").score == 2.0
    with pytest.raises(ParseError, match="does not match"):
        parse_custom("score: " * (MB // 7), r"score:\s*(\d+)\s*$")


def old_custom(text: str, pattern: str, kind: str) -> tuple[object, ...]:
    """judgeflow's parse_custom before the timeout, on Python ``re``: the reference."""
    compiled = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    last = None
    for last in compiled.finditer(text):
        pass
    if last is None:
        return ("error",)
    value = ((last.group(1) if compiled.groups else last.group(0)) or "").strip()
    feedback = text[: last.start()].strip() or None
    if kind == "absolute":
        try:
            score = float(value)
        except ValueError:
            return ("error",)
        return ("error",) if score != score or abs(score) == float("inf") else (score, feedback)
    upper = value.upper()
    if upper.startswith("RESPONSE"):
        upper = upper[len("RESPONSE") :].strip()
    return (upper, feedback) if upper in ("A", "B") else ("error",)


def test_custom_regex_agrees_with_python_re_on_ordinary_patterns() -> None:
    """``regex`` (version 0) reads Python ``re`` patterns the same way: last match, its group."""
    patterns = {
        r"rating:\s*(\d+(?:\.\d+)?)": "absolute", r"\[RESULT\]\s*(\d)": "absolute", r"(?<=score=)\d": "absolute",
        r"^grade (\d)$": "absolute", r"(\d)\s*/\s*5": "absolute", r"\bscore\W+(\S+)": "absolute",
        r"verdict: ((?:Response )?[AB])\b": "relative", r"winner:\s*(.+)$": "relative",
    }
    rng = random.Random(5)
    pieces = ["rating: 3", "Rating:4.5", "[RESULT] 2", "score=4", "grade 5", "\n", "3 / 5", "verdict: Response B",
              "Score :: 1", " ", "x", "\u00a0", "\u0664", "[result]\t1", "winner: a", "Winner: Response B\n", "ſcore 2",
              "score nan", "score 1e400"]
    ok = 0
    for _ in range(3_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 8)))
        for pattern, kind in patterns.items():
            want = old_custom(text, pattern, kind)
            try:
                reply = parse_custom(text, pattern, kind=kind)
                got: tuple[object, ...] = (reply.score if kind == "absolute" else reply.verdict, reply.feedback)
            except ParseError:
                got = ("error",)
            assert got == want, (text, pattern)
            ok += got != ("error",)
    assert ok > 3_000
