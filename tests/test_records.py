"""The judgment sink: bounded loss on a kill, compaction, part numbers never reused."""

from __future__ import annotations

from pathlib import Path

from judgeflow.judging.records import JudgmentSink, judgment_record, read_judgments
from judgeflow.specs import JudgeSpec

SPEC = JudgeSpec(name="j")


def _record(i: int) -> dict:
    return judgment_record(SPEC, {"request_id": f"r{i}", "row_id": "x", "candidate_a": 0}, score=3)


def test_records_reach_disk_after_the_interval_not_only_at_the_count(tmp_path: Path) -> None:
    sink = JudgmentSink(tmp_path, flush_every=1_000_000, flush_interval_s=0.0)
    sink.add(_record(1))  # interval 0: written at once, as a killed process would need
    assert read_judgments(tmp_path).collect()["request_id"].to_list() == ["r1"]
    sink.close()


def test_close_compacts_and_numbers_are_never_reused(tmp_path: Path) -> None:
    with JudgmentSink(tmp_path, flush_every=3, flush_interval_s=1e9) as sink:
        sink.extend(_record(i) for i in range(10))
    parts = sorted(p.name for p in tmp_path.glob("*.parquet"))
    assert parts == ["part-00004.parquet"]  # parts 0-3 folded into one
    with JudgmentSink(tmp_path) as sink:
        sink.add(_record(99))
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == ["part-00004.parquet", "part-00005.parquet"]
    frame = read_judgments(tmp_path).collect()
    assert frame.height == 11 and frame["request_id"].n_unique() == 11


def test_a_part_set_aside_as_corrupt_keeps_its_number(tmp_path: Path) -> None:
    """A new part never takes the name of one the store set aside (issue 13 item 10)."""
    with JudgmentSink(tmp_path) as sink:
        sink.add(_record(1))
    (part,) = tmp_path.glob("*.parquet")
    part.rename(part.with_name(part.name + ".corrupt"))
    with JudgmentSink(tmp_path) as sink:
        sink.add(_record(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00000.parquet.corrupt", "part-00001.parquet"]
