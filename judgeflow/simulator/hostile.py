"""Hostile judge replies on demand: a tag in a candidate makes the simulator's judge wrap its
verdict in a reply built to break reply parsers (issue 13, items 2 and 3).

Why a tag in the data rather than a setting: the attack needs several shapes in one run, per
request, on every endpoint (live and batch) without a restart, and the verdict must stay the one
the deterministic judge gives, so a test knows what the right answer is. A candidate response
holding ``[[jf-hostile:SHAPE:SIZE]]`` (it reaches the judge prompt) gets the judge's usual reply
wrapped as SHAPE, about SIZE characters long; the verdict at its end is unchanged.

Shapes (``SHAPES``): a verdict with the *opposite* answer quoted before the real one
(``quotes``, ``fenced-flip``), megabytes of whitespace where old patterns backtracked
(``score-spaces``, ``result-colon-spaces``, ``trailing-spaces``, ``spaces-inside``), and deep or
endless braces before the final JSON object (``deep-braces``, ``deep-chain``).
"""

from __future__ import annotations

import re

import orjson

TAG = re.compile(r"\[\[jf-hostile:([a-z-]+):(\d{1,8})\]\]")
MAX_SIZE = 8 << 20

#: shape -> reply forms it applies to ("score": "... [RESULT] n", "ab": "... [RESULT] A|B",
#: "json": a pairwise-JSON object)
SHAPES: dict[str, tuple[str, ...]] = {
    "quotes": ("score", "ab", "json"),
    "score-spaces": ("score",),
    "result-colon-spaces": ("ab",),
    "trailing-spaces": ("score", "ab", "json"),
    "fenced-flip": ("json",),
    "spaces-inside": ("json",),
    "deep-braces": ("json",),
    "deep-chain": ("json",),
}


def tag(shape: str, size: int) -> str:
    """The text to put in a candidate to get ``shape`` replies of about ``size`` characters."""
    if shape not in SHAPES:
        raise ValueError(f"unknown hostile shape {shape!r}; known: {', '.join(SHAPES)}")
    return f"[[jf-hostile:{shape}:{size}]]"


def _repeat(size: int, piece: str) -> str:
    return piece * max(1, size // len(piece))


def _form(text: str) -> tuple[str, str] | None:
    """("score", "3"), ("ab", "B") or ("json", "A"): what the honest reply says, if readable."""
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        preferred = data.get("preferred") if isinstance(data, dict) else None
        return ("json", preferred) if preferred in ("A", "B") else None
    last = text.rstrip()[-1:]
    if last.isdigit():
        return "score", last
    return ("ab", last) if last in ("A", "B") else None


def _other(form: str, value: str) -> str:
    if form == "score":
        return "1" if value == "5" else "5"
    return "B" if value == "A" else "A"


def wrap(text: str, shape: str, size: int) -> str:
    """The honest reply ``text`` wrapped as ``shape``; unchanged when the shape does not apply."""
    found = _form(text)
    if found is None or found[0] not in SHAPES.get(shape, ()):
        return text
    form, value = found
    other = _other(form, value)
    size = min(size, MAX_SIZE)
    if shape == "quotes":
        if form == "json":
            quoted = orjson.dumps({"reasoning": "quoted from the candidate", "preferred": other}).decode()
            return _repeat(size, f"The candidate wrote {quoted} here. ") + text
        return _repeat(size, f"The candidate says [RESULT] {other} here. ") + text
    if shape == "score-spaces":
        return "Score:" + " " * size + "\n" + text
    if shape == "result-colon-spaces":
        return "[RESULT:" + " " * size + "\n" + text
    if shape == "trailing-spaces":
        return text + " " * size
    if shape == "fenced-flip":
        draft = orjson.dumps({"reasoning": "a first draft", "preferred": other}).decode()
        return _repeat(size, "Thinking it over. ") + f"\n```json\n{draft}\n```\nOn reflection, the final answer:\n" + text
    if shape == "spaces-inside":
        return "{" + " " * size + text[1:] + " " * size
    if shape == "deep-braces":
        half = max(1, size // 2)
        return "{" * half + "}" * (half - 1) + "\n" + text
    if shape == "deep-chain":
        return _repeat(size, '{"a":') + "\n" + text
    return text


def apply(prompt: str, text: str) -> str:
    """``text`` wrapped as the shape tagged in ``prompt``, or ``text`` when there is no tag."""
    found = TAG.search(prompt)
    if found is None:
        return text
    return wrap(text, found.group(1), int(found.group(2)))


__all__ = ["MAX_SIZE", "SHAPES", "TAG", "apply", "tag", "wrap"]
