"""The judgment store: what counts as answered (by status only), which record wins, corrupt parts.

Regression tests for issue 13: failures of infrastructure were stored as final and never asked
again; the store inferred "not sent" from error-message prefixes; a zero-byte or truncated part
failed every later read with a polars error that did not name the file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import polars as pl
import pytest

from judgeflow.judging.records import JudgmentSink, judgment_record
from judgeflow.specs import JudgeSpec
from judgeflow.store import JudgmentStore

SPEC = JudgeSpec(name="j")


def _request(i: int) -> dict:
    return {"request_id": f"r{i}", "row_id": f"row{i}", "candidate_a": 0}


def _ok(i: int) -> dict:
    return judgment_record(SPEC, _request(i), score=4)


def _failure(i: int, status: str, error: str = "something broke") -> dict:
    return judgment_record(SPEC, _request(i), error=error, status=status)


def _write(store: JudgmentStore, name: str, records: list[dict], mtime: float | None = None) -> Path:
    folder = store.judge_dir(SPEC)
    with JudgmentSink(folder, prefix=name) as sink:
        sink.extend(records)
    path = sorted(folder.glob(f"{name}-*.parquet"))[-1]
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _requests(n: int) -> pl.DataFrame:
    return pl.DataFrame({"request_id": [f"r{i}" for i in range(n)]})


def test_only_ok_and_the_judges_own_failures_count_as_answered(tmp_path: Path) -> None:
    store = JudgmentStore.at(tmp_path)
    _write(store, "p", [
        _ok(0),
        _failure(1, "failed", "unparseable after 3 replies: no score"),
        _failure(2, "error", "TransientError: HTTP 401: Incorrect API key provided."),
        _failure(3, "not_sent", "budget cap of $1.00 reached"),
        # the status alone decides: no guessing from the text of the message
        _failure(4, "failed", "deadline exceeded: cancelled"),
        _failure(5, "error", "unparseable after 3 replies"),
    ])
    pending = store.pending(SPEC, _requests(7))["request_id"].to_list()
    assert sorted(pending) == ["r2", "r3", "r5", "r6"]
    again = store.pending(SPEC, _requests(7), retry_failed=True)["request_id"].to_list()
    assert sorted(again) == ["r1", "r2", "r3", "r4", "r5", "r6"]


def test_a_later_answer_wins_over_an_earlier_failure_whatever_the_file_names(tmp_path: Path) -> None:
    store = JudgmentStore.at(tmp_path)
    # run 1 (its parts sort last by name) failed on the infrastructure; run 2 answered
    _write(store, "live-ffff", [_failure(0, "error"), _failure(1, "error")], mtime=1_000_000)
    _write(store, "live-0000", [_ok(0), _failure(1, "failed", "unparseable")], mtime=2_000_000)
    got = store.scan(SPEC).collect().sort("request_id")
    assert got["status"].to_list() == ["ok", "failed"]
    assert store.pending(SPEC, _requests(2)).is_empty()


def test_an_answer_is_never_replaced_by_a_later_failure(tmp_path: Path) -> None:
    store = JudgmentStore.at(tmp_path)
    _write(store, "a", [_ok(0)], mtime=1_000_000)
    _write(store, "b", [_failure(0, "error")], mtime=2_000_000)
    assert store.scan(SPEC).collect()["status"].to_list() == ["ok"]


@pytest.mark.parametrize("damage", ["zero-byte", "truncated"])
def test_a_corrupt_part_is_named_set_aside_and_its_requests_asked_again(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = JudgmentStore.at(tmp_path)
    _write(store, "good", [_ok(0), _ok(1)])
    bad = _write(store, "bad", [_ok(2), _ok(3)])
    data = bad.read_bytes()
    bad.write_bytes(b"" if damage == "zero-byte" else data[: len(data) // 2])
    store_logger = logging.getLogger("judgeflow.store")
    store_logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger=store_logger.name)
    try:
        pending = store.pending(SPEC, _requests(4))
    finally:
        store_logger.removeHandler(caplog.handler)
    assert sorted(pending["request_id"].to_list()) == ["r2", "r3"]
    assert not bad.exists()
    aside = bad.with_name(bad.name + ".corrupt")
    assert aside.exists() and aside.read_bytes() == (b"" if damage == "zero-byte" else data[: len(data) // 2])
    assert str(bad) in caplog.text
    # later reads work and do not warn again
    caplog.clear()
    assert store.judgments_for(SPEC, _requests(4)).height == 2
    assert "corrupt" not in caplog.text


def test_set_aside_parts_are_reported(tmp_path: Path) -> None:
    store = JudgmentStore.at(tmp_path)
    _write(store, "good", [_ok(0)])
    bad = store.judge_dir(SPEC) / "bad-00000.parquet"
    bad.write_bytes(b"")
    aside = store.check_parts(SPEC)
    assert [(a.path, a.moved_to) for a in aside] == [(bad, bad.with_name(bad.name + ".corrupt"))]
    assert store.check_parts(SPEC) == []
