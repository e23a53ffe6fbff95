"""A judge's raw reply is stored capped: head and tail kept, the cut said in the text (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

from judgeflow.judging.records import (
    RAW_HEAD_CHARS,
    RAW_TAIL_CHARS,
    JudgmentSink,
    cap_text,
    judgment_record,
    read_judgments,
)
from judgeflow.schemas import JUDGMENTS_SCHEMA
from judgeflow.specs import JudgeSpec

SPEC = JudgeSpec(name="j")
REQUEST = {"request_id": "r1", "row_id": "x", "candidate_a": 0}


def test_short_text_is_kept_as_it_is() -> None:
    text = "x" * (RAW_HEAD_CHARS + RAW_TAIL_CHARS)
    assert cap_text(text) is text
    assert cap_text(None) is None


def test_long_text_keeps_head_and_tail_and_says_how_much_was_cut() -> None:
    text = "HEAD" + "a" * 1_000_000 + "the verdict [RESULT] 4"
    capped = cap_text(text)
    assert capped is not None and len(capped) < RAW_HEAD_CHARS + RAW_TAIL_CHARS + 200
    assert capped.startswith("HEAD" + "a" * 100) and capped.endswith("the verdict [RESULT] 4")
    cut = int(re.search(r"judgeflow cut (\d+) characters", capped).group(1))  # type: ignore[union-attr]
    assert cut == len(text) - RAW_HEAD_CHARS - RAW_TAIL_CHARS
    assert capped[:RAW_HEAD_CHARS] == text[:RAW_HEAD_CHARS]
    assert capped[-RAW_TAIL_CHARS:] == text[-RAW_TAIL_CHARS:]


def test_a_megabyte_reply_is_stored_capped_ok_and_failed(tmp_path: Path) -> None:
    """Both the raw reply and the feedback taken from it; same schema, no new column."""
    reply = "Feedback: " + " padding" * 200_000 + " [RESULT] 3"
    ok = judgment_record(SPEC, REQUEST, score=3.0, feedback=reply[:-11], raw_output=reply)
    failed = judgment_record(SPEC, REQUEST | {"request_id": "r2"}, error="unparseable", raw_output=reply)
    with JudgmentSink(tmp_path) as sink:
        sink.extend([ok, failed])
    frame = read_judgments(tmp_path).collect()
    assert frame.schema == JUDGMENTS_SCHEMA
    for raw in frame["raw_output"]:
        assert len(raw) < RAW_HEAD_CHARS + RAW_TAIL_CHARS + 200 and raw.endswith("[RESULT] 3")
        assert "characters of this text" in raw
    feedback = frame.filter(frame["request_id"] == "r1")["feedback"].item()
    assert len(feedback) < RAW_HEAD_CHARS + RAW_TAIL_CHARS + 200
