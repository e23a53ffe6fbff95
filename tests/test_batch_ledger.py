"""The batch ledger: durable, atomic, safe under concurrent updates."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson

from judgeflow.batch.ledger import Ledger, LedgerEntry, entry_id


def _entry(i: int) -> LedgerEntry:
    return LedgerEntry(entry_id=entry_id("j", 1, f"k{i}"), provider="openai", judge="j", round=1,
                       chunk_key=f"k{i}", chunk={"count": 1})


def test_put_update_and_reload(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    e = ledger.put(_entry(0))
    assert e.status == "intent"
    ledger.update(e.entry_id, status="submitted", batch_id="batch_1")
    again = Ledger(tmp_path / "ledger.json").get(e.entry_id)
    assert again is not None and again.status == "submitted" and again.batch_id == "batch_1"
    assert Ledger(tmp_path / "ledger.json").claimed_batch_ids() == {"batch_1"}
    # no temp files left behind, and the file is plain JSON
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json", "ledger.json.lock"]
    assert "j:r1:k0" in orjson.loads((tmp_path / "ledger.json").read_bytes())["entries"]


def test_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    n = 24

    def work(i: int) -> None:
        ledger = Ledger(path)  # separate objects share the lock of the same path
        ledger.put(_entry(i))
        ledger.update(entry_id("j", 1, f"k{i}"), status="submitted", batch_id=f"b{i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = Ledger(path).entries()
    assert len(entries) == n
    assert {e.batch_id for e in entries.values()} == {f"b{i}" for i in range(n)}
