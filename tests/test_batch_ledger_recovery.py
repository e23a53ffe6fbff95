"""A ledger cut short between two runs: named, set aside, recovered, and nothing paid twice
where the provider lets batches be found again (OpenAI by metadata; both from the ledger's
readable part and its previous version). Real HTTP to the simulator."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from judgeflow.batch.runner import BatchWorkspace, anomalies_of, run_batch_judges
from tests.test_batch_runner import FAST, PROVIDERS, created, make_rows, make_spec


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JF_TEST_BATCH_KEY", "sk-test-batch-key-123456")


def _cut(path: Path, fraction: float) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(int(size * fraction))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_ledger_recovered_without_paying_twice(
    make_simulator: Any, tmp_path: Path, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_simulator(**FAST)
    spec = make_spec(sim, provider)
    rows = make_rows(6)
    ws = BatchWorkspace.at(tmp_path / "w")
    first = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert created(sim, provider) == 3
    _cut(ws.root / "ledger.json", 0.4)
    with caplog.at_level(logging.WARNING):
        again = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert created(sim, provider) == 3 and sim.stats()["custom_ids_paid_twice"] == 0
    assert again.sort("request_id").equals(first.sort("request_id"))
    (aside,) = ws.root.glob("ledger.json.corrupt-*")
    assert str(ws.root / "ledger.json") in caplog.text and aside.name in caplog.text
    (recovered,) = [a for a in anomalies_of(ws) if a["kind"] == "ledger_recovered"]
    assert "3 entries recovered, 0 lost" in recovered["detail"]


def test_openai_ledger_beyond_repair_found_again_by_metadata(
    make_simulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No readable entry and no previous version: OpenAI batches carry their chunk key in the
    metadata, so every batch is found again instead of being paid for a second time."""
    sim = make_simulator(**FAST)
    spec = make_spec(sim, "openai")
    rows = make_rows(6)
    ws = BatchWorkspace.at(tmp_path / "w")
    first = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    os.unlink(ws.root / "ledger.json.prev")
    _cut(ws.root / "ledger.json", 0.05)
    with caplog.at_level(logging.WARNING):
        again = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert created(sim, "openai") == 3 and sim.stats()["custom_ids_paid_twice"] == 0
    assert again.sort("request_id").equals(first.sort("request_id"))
    assert caplog.text.count("found by its metadata") == 3
    assert all(e.found_by == "metadata" for e in ws.ledger.entries().values())


def test_anthropic_ledger_beyond_repair_says_what_is_asked_again(
    make_simulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Anthropic batches carry no metadata: an entry lost with its ledger (and its previous
    version) is asked again, and the log says which and how many requests."""
    sim = make_simulator(**FAST)
    spec = make_spec(sim, "anthropic")
    rows = make_rows(6)
    ws = BatchWorkspace.at(tmp_path / "w")
    run_batch_judges(rows, [spec], ws.root, tmp_path / "out")
    os.unlink(ws.root / "ledger.json.prev")
    text = (ws.root / "ledger.json").read_text()
    (ws.root / "ledger.json").write_text(text[: text.index('"provider"')])  # inside the first entry
    with caplog.at_level(logging.WARNING):
        again = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert again["status"].to_list() == ["ok"] * 12
    lost = [r for r in caplog.records if "lost with the damaged ledger" in r.getMessage()]
    assert len(lost) == 1 and "are asked again" in lost[0].getMessage()
    assert created(sim, "anthropic") == 6  # the readable part held no complete entry


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unreadable_collected_results_are_downloaded_again(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    """A collected part cut short between runs: the batch's results are fetched again (free),
    not replaced by "batch did not end" failures."""
    sim = make_simulator(**FAST)
    spec = make_spec(sim, provider, max_requests_per_batch=100)
    rows = make_rows(3)
    ws = BatchWorkspace.at(tmp_path / "w")
    first = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    (entry,) = ws.ledger.entries().values()
    (part,) = Path(entry.collected_path or "").glob("*.parquet")
    part.write_bytes(part.read_bytes()[:100])
    again = run_batch_judges(rows, [spec], ws.root, tmp_path / "out")[spec.name]
    assert again.sort("request_id").equals(first.sort("request_id"))
    assert created(sim, provider) == 1
