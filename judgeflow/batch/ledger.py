"""The batch ledger: what was submitted to which provider, so nothing is ever paid for twice.

One JSON file per build output (``<out>/batch/ledger.json``). Every change is written atomically
(temp file, fsync, rename, fsync of the directory), so a crash leaves either the old or the new
ledger, never a torn one. The ledger is re-read under a lock before every change because several
threads (Prefect tasks polling different batches) and, across restarts, several processes update it.

The order of writes around a submission is what makes re-runs safe:

1. ``intent``     before anything is sent (time stamp, chunk key, count);
2. ``uploaded``   after the OpenAI input file exists (its id, so a re-run does not upload again);
3. ``submitted``  right after ``create`` returned (batch id) and BEFORE polling starts;
4. ``ended``/``collected``/``failed`` as the batch goes on.

A crash between 3's ``create`` and its ledger write leaves an ``intent`` entry: the provider module
then looks for the batch (OpenAI: by the chunk key in the batch metadata; Anthropic: by request
count and creation time) before it would create a new one.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

EntryStatus = Literal[
    "intent", "uploaded", "submitted", "ended", "collected", "cancelled", "abandoned"
]

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class LedgerEntry(BaseModel):
    """One provider batch (or the intent to create it) for one chunk of one judge and round."""

    model_config = ConfigDict(extra="ignore")

    entry_id: str  # "<judge>:r<round>:<chunk_key>"
    provider: str
    judge: str
    round: int
    chunk_key: str
    chunk: dict[str, Any]  # judgeflow.batch.requests.Chunk.as_dict(): path, count, bytes, hash
    parent: str | None = None  # entry whose failures this follow-up re-submits
    status: EntryStatus = "intent"
    batch_id: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    provider_status: str | None = None  # the provider's own word (validating, in_progress, ...)
    counts: dict[str, int] = Field(default_factory=dict)
    error: str | None = None  # batch-level failure (failed validation, deadline, ...)
    collected_path: str | None = None
    retry_ids: int = 0  # how many of its requests were passed on to a follow-up round
    follow_ups: list[str] = Field(default_factory=list)
    intent_at: float = Field(default_factory=time.time)
    submitted_at: float | None = None
    updated_at: float = Field(default_factory=time.time)


def entry_id(judge: str, round_: int, chunk_key: str) -> str:
    """The ledger key of a chunk: same judge, round and content -> same entry."""
    return f"{judge}:r{round_}:{chunk_key}"


class Ledger:
    """A JSON ledger of batch entries with atomic, locked read-modify-write updates."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(key, threading.Lock())

    # -- reading -------------------------------------------------------------------------------

    def _read(self) -> dict[str, LedgerEntry]:
        if not self.path.exists():
            return {}
        data = orjson.loads(self.path.read_bytes())
        return {k: LedgerEntry.model_validate(v) for k, v in data.get("entries", {}).items()}

    def entries(self) -> dict[str, LedgerEntry]:
        """A snapshot of all entries, keyed by entry id."""
        with self._locked():
            return self._read()

    def get(self, eid: str) -> LedgerEntry | None:
        return self.entries().get(eid)

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Thread lock + advisory file lock: one writer at a time, in and across processes."""
        with self._lock:
            lock_path = self.path.with_suffix(self.path.suffix + ".lock")
            with open(lock_path, "a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def _write(self, entries: dict[str, LedgerEntry]) -> None:
        payload = orjson.dumps(
            {"version": 1, "entries": {k: v.model_dump(mode="json") for k, v in entries.items()}},
            option=orjson.OPT_INDENT_2,
        )
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def put(self, entry: LedgerEntry) -> LedgerEntry:
        """Insert or replace ``entry`` (durably, before returning)."""
        with self._locked():
            entries = self._read()
            entry.updated_at = time.time()
            entries[entry.entry_id] = entry
            self._write(entries)
        return entry

    def update(self, eid: str, **fields: Any) -> LedgerEntry:
        """Set ``fields`` on entry ``eid`` (durably, before returning)."""
        return self.modify(eid, lambda e: e.model_copy(update=fields))

    def modify(self, eid: str, fn: Callable[[LedgerEntry], LedgerEntry]) -> LedgerEntry:
        with self._locked():
            entries = self._read()
            new = fn(entries[eid])
            new.updated_at = time.time()
            entries[eid] = new
            self._write(entries)
        return new

    def claimed_batch_ids(self) -> set[str]:
        """Batch ids already attached to some entry (a lost-create search must skip them)."""
        return {e.batch_id for e in self.entries().values() if e.batch_id}
