"""The ``hostile_replies`` reliability attack: hostile judge replies through the live path.

Before issue 13 items 2 and 3 it found violations: every ``fenced-flip`` and ``quotes`` reply of
the pairwise-JSON judge was read as the opposite verdict, and ``Score:`` / ``[RESULT:`` followed
by spaces took seconds at 16k characters (hours at 1 MB), so those shapes were reported slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.reliability.attacks import AttackContext, all_attacks
from benchmarks.reliability.attacks import hostile_replies as module
from judgeflow.parsing import ParsedReply


def context(root: Path, said: list[str]) -> AttackContext:
    """No Prefect server or S3 needed: the attack runs its own simulator and judges in process."""
    return AttackContext(root=root, env={}, s3=None, quick=True, say=said.append)


@pytest.mark.timeout(600)
def test_hostile_replies_attack_finds_no_violation(tmp_path: Path) -> None:
    said: list[str] = []
    result = all_attacks()["hostile_replies"](context(tmp_path, said))
    assert result.tried > 0 and len(said) == 4, said
    assert result.violations == [], result.violations
    numbers = result.numbers
    assert numbers["replies_over_http"] == 2 * (3 + 3 + 6 + 3)  # two requests per shape, each asked once
    assert numbers["hostile_chars_served"] > numbers["replies_over_http"] * 200_000
    assert numbers["slowest_parse_ms"] < 1_000 and numbers["longest_loop_stall_ms"] < 1_000


def test_the_checks_catch_a_flipped_verdict_and_a_slow_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack can fail: a parser that reads the first JSON object (the old fenced-block
    behaviour) and sleeps is reported, and its rows are not sent on."""
    import time

    def first_object(spec: object, text: str) -> ParsedReply:
        time.sleep(0.6)
        first = text.find('"preferred": "') + len('"preferred": "')
        return ParsedReply(verdict=text[first])  # type: ignore[arg-type]

    case = next(c for c in module.cases("http://127.0.0.1:9") if c.label == "pairwise-json")
    case = module.Case(case.label, case.spec, ("fenced-flip",))
    replies = module.served(case, module.rows_for(case, 4_096))
    monkeypatch.setattr(module, "parse_reply", first_object)
    monkeypatch.setattr(module, "PARSE_LIMIT_S", 0.5)
    violations: list[str] = []
    slowest, bad = module.check_parse(case, replies, violations)
    assert bad == {"pairwise-json-fenced-flip"} and slowest >= 0.5
    assert sum("parsing took" in v for v in violations) == 2
    assert sum("the judge said" in v for v in violations) == 2
