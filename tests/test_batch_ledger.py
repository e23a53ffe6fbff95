"""The batch ledger: durable, atomic, safe under concurrent updates."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import orjson
import pytest

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
    # no temp files left behind (the replaced version is kept as .prev), and the file is plain JSON
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json", "ledger.json.lock", "ledger.json.prev"]
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


def _filled(path: Path, n: int = 6) -> Ledger:
    ledger = Ledger(path)
    for i in range(n):
        ledger.put(_entry(i))
        ledger.update(entry_id("j", 1, f"k{i}"), status="submitted", batch_id=f"b{i}")
    return ledger


def _aside(directory: Path) -> list[Path]:
    return sorted(directory.glob("ledger.json.corrupt-*"))


def test_a_truncated_ledger_is_named_set_aside_and_recovered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.json"
    _filled(path)
    raw = path.read_bytes()
    with open(path, "r+b") as fh:  # cut short in place (a full disk, a copy that stopped)
        fh.truncate(int(len(raw) * 0.6))
    with caplog.at_level(logging.ERROR, logger="judgeflow.batch.ledger"):
        entries = Ledger(path).entries()  # no bare JSONDecodeError
    # complete entries come from the damaged file, the rest from the previous version: at most
    # the last change is older than it was, a state a crash could have left
    assert set(entries) == {entry_id("j", 1, f"k{i}") for i in range(6)}
    assert sum(e.batch_id is not None for e in entries.values()) >= 5
    (aside,) = _aside(tmp_path)
    assert aside.read_bytes() == raw[: int(len(raw) * 0.6)]  # the bytes kept for a post-mortem
    message = caplog.text
    assert str(path) in message and aside.name in message and "recovered 6 entries" in message
    (recovery,) = Ledger(path).recoveries()
    assert recovery["set_aside_as"] == aside.name and recovery["salvaged"] >= 1
    orjson.loads(path.read_bytes())  # the rebuilt ledger is whole again


def test_an_empty_ledger_is_rebuilt_from_its_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    _filled(path, 3)
    path.write_bytes(b"")
    entries = Ledger(path).entries()
    assert len(entries) == 3 and len(_aside(tmp_path)) == 1
    assert Ledger(path).recoveries()[0]["reason"] == "empty (0 bytes)"


def test_a_ledger_beyond_repair_names_what_was_lost(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    _filled(path, 2)
    os.unlink(path.with_name("ledger.json.prev"))
    text = path.read_text()
    path.write_text(text[: text.index('"provider"')])  # inside the first entry
    assert Ledger(path).entries() == {}
    (recovery,) = Ledger(path).recoveries()
    assert recovery["lost"] == [entry_id("j", 1, "k0")]
    # and the ledger works again
    Ledger(path).put(_entry(9))
    assert list(Ledger(path).entries()) == [entry_id("j", 1, "k9")]


def test_a_failed_write_leaves_the_old_ledger_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes are atomic: a crash before the rename leaves the previous ledger, never a torn one."""
    path = tmp_path / "ledger.json"
    ledger = _filled(path, 2)
    before = path.read_bytes()
    real_replace = os.replace

    def crash(src: object, dst: object) -> None:
        if Path(str(dst)) == path:
            raise OSError("disk gone")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        ledger.update(entry_id("j", 1, "k0"), status="collected")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert Ledger(path).get(entry_id("j", 1, "k0")).status == "submitted"  # type: ignore[union-attr]
