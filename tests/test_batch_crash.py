"""Kill -9 a batch build in the middle of polling, run it again: nothing is paid twice.

The build runs in a SUBPROCESS (``python -m judgeflow.batch.runner``) against a simulator in this
test process, so the simulator's stats see every batch either run created.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from judgeflow.batch.ledger import Ledger
from judgeflow.batch.runner import run_batch_judges
from tests.test_batch_runner import make_rows, make_spec

REPO = Path(__file__).resolve().parents[1]
SLOW = {"batch_validating_s": 0.1, "batch_in_progress_s": 2.5, "batch_finalizing_s": 0.1}


def _start(rows_path: Path, specs_path: Path, workdir: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"JF_TEST_BATCH_KEY": "sk-test-batch-key-123456"}
    return subprocess.Popen(
        [sys.executable, "-m", "judgeflow.batch.runner", "--rows", str(rows_path),
         "--specs", str(specs_path), "--workdir", str(workdir), "--out", str(out)],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )


def _wait_for_submitted(ledger_path: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "the build ended before it could be killed"
        if ledger_path.exists():
            entries = Ledger(ledger_path).entries().values()
            if sum(1 for e in entries if e.status == "submitted") >= n:
                return
        time.sleep(0.05)
    raise AssertionError("batches were not submitted in time")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_sigkill_during_polling_then_resume(
    make_simulator: Any, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = make_rows(6)  # 12 requests -> 3 chunks of <= 5
    rows_path = tmp_path / "rows.parquet"
    rows.write_parquet(rows_path)

    # the reference: an uninterrupted run against its own simulator
    ref_sim = make_simulator(**(SLOW | {"batch_in_progress_s": 0.2}))
    monkeypatch.setenv("JF_TEST_BATCH_KEY", "sk-test-batch-key-123456")
    ref_spec = make_spec(ref_sim, provider)
    reference = run_batch_judges(rows, [ref_spec], tmp_path / "ref-w", tmp_path / "ref-out")[ref_spec.name]

    sim = make_simulator(**SLOW)
    spec = make_spec(sim, provider)
    specs_path = tmp_path / "specs.json"
    specs_path.write_bytes(orjson.dumps([spec.model_dump(mode="json")]))
    workdir, out = tmp_path / "w", tmp_path / "out"

    first = _start(rows_path, specs_path, workdir, out, tmp_path / "run1.log")
    try:
        _wait_for_submitted(workdir / "ledger.json", 3, first)
        time.sleep(0.3)  # well inside polling: batches take 2.5 s
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert not (out / spec.name).exists()  # it really died before finishing
    assert sim.stats()[f"{provider}_batches_created"] == 3

    second = _start(rows_path, specs_path, workdir, out, tmp_path / "run2.log")
    assert second.wait(60) == 0, (tmp_path / "run2.log").read_text()

    stats = sim.stats()
    assert stats[f"{provider}_batches_created"] == 3  # exactly one batch per chunk
    assert stats["custom_ids_paid_twice"] == 0
    resumed = pl.read_parquet(out / spec.name / "*.parquet").sort("request_id")
    assert resumed.height == 12 and (resumed["status"] == "ok").all()
    assert resumed.equals(reference.sort("request_id"))
