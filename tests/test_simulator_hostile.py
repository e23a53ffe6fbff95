"""The simulator's hostile replies keep the deterministic judge's verdict in every shape."""

from __future__ import annotations

import pytest

from judgeflow.parsing import parse_absolute, parse_pairwise_json, parse_relative
from judgeflow.simulator import hostile
from judgeflow.simulator.judge import answer

HONEST = {
    "score": ("Feedback: fine. [RESULT] 4", lambda t: parse_absolute(t).score, 4.0),
    "ab": ("Feedback: B is better. [RESULT] B", lambda t: parse_relative(t).verdict, "B"),
    "json": ('{"reasoning": "A is right", "preferred": "A"}', lambda t: parse_pairwise_json(t).verdict, "A"),
}


@pytest.mark.parametrize("shape", sorted(hostile.SHAPES))
@pytest.mark.parametrize("form", sorted(HONEST))
def test_every_shape_keeps_the_verdict_and_has_its_size(shape: str, form: str) -> None:
    text, parse, want = HONEST[form]
    wrapped = hostile.wrap(text, shape, 50_000)
    if form not in hostile.SHAPES[shape]:
        assert wrapped == text
        return
    assert len(wrapped) >= 45_000  # about the size asked for
    assert parse(wrapped) == want


def test_a_tag_in_the_prompt_selects_the_shape_and_unknown_tags_change_nothing() -> None:
    prompt = ("###Task Description: x\n###The instruction to evaluate:\nhi\n###Response to evaluate:\n"
              f"an answer {hostile.tag('score-spaces', 1000)}\n###Score Rubrics:\nr\n###Feedback:")
    honest = answer(prompt.replace(hostile.tag("score-spaces", 1000), ""))
    reply = answer(prompt)
    assert reply.startswith("Score:" + " " * 1000) and parse_absolute(reply).score is not None
    assert answer(prompt.replace("score-spaces", "no-such-shape")).endswith(honest[-12:])
    with pytest.raises(ValueError, match="unknown hostile shape"):
        hostile.tag("no-such-shape", 10)
