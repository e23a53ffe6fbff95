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

Every write also keeps the version it replaces as ``ledger.json.prev`` (a hard link: no copy).
A ledger that cannot be read (cut short by a full disk or a copy, emptied, not JSON) is never a
bare ``JSONDecodeError``: it is renamed ``ledger.json.corrupt-<time>`` and rebuilt from every
complete entry still readable in it plus the previous version for the rest (``ledger_repair``),
which is a state a crash could have left and the runner knows how to resume from. What was
recovered and which entries were lost is logged and kept in the ledger's ``recoveries``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgeflow.batch.ledger_repair import named_entry_ids, salvage_entries

log = logging.getLogger(__name__)

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
    found_by: str | None = None  # "metadata": re-attached to a batch found without a ledger entry
    anomalies: list[dict[str, Any]] = Field(default_factory=list)  # first ones, see the runner
    anomaly_counts: dict[str, int] = Field(default_factory=dict)  # all of them, by kind
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

    @property
    def prev_path(self) -> Path:
        """The version the last write replaced (what a damaged ledger is rebuilt from)."""
        return self.path.with_name(self.path.name + ".prev")

    def _read(self) -> dict[str, LedgerEntry]:
        return self._load()[0]

    def _load(self) -> tuple[dict[str, LedgerEntry], list[dict[str, Any]]]:
        """(entries, recoveries); a damaged file is set aside and rebuilt (under the lock)."""
        if not self.path.exists():
            if self.prev_path.exists():  # the ledger itself was removed: its last version is here
                return self._recover(None, "the ledger file is missing")
            return {}, []
        raw = self.path.read_bytes()
        try:
            doc = orjson.loads(raw)
            entries = {k: LedgerEntry.model_validate(v) for k, v in doc["entries"].items()}
            return entries, list(doc.get("recoveries", []))
        except (orjson.JSONDecodeError, ValidationError, KeyError, TypeError, AttributeError) as exc:
            reason = "empty (0 bytes)" if not raw else f"{type(exc).__name__}: {str(exc)[:200]}"
            return self._recover(raw, reason)

    def _load_prev(self) -> tuple[dict[str, LedgerEntry], list[dict[str, Any]]]:
        try:
            doc = orjson.loads(self.prev_path.read_bytes())
            return ({k: LedgerEntry.model_validate(v) for k, v in doc["entries"].items()},
                    list(doc.get("recoveries", [])))
        except (OSError, orjson.JSONDecodeError, ValidationError, KeyError, TypeError, AttributeError):
            return {}, []

    def _recover(self, raw: bytes | None, reason: str) -> tuple[dict[str, LedgerEntry], list[dict[str, Any]]]:
        """Set the damaged file aside and rebuild the ledger from what can still be read."""
        aside = None
        if raw is not None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
            os.replace(self.path, aside)
        salvaged: dict[str, LedgerEntry] = {}
        for key, value in salvage_entries(raw or b"").items():
            try:
                salvaged[key] = LedgerEntry.model_validate(value)
            except ValidationError:
                continue
        previous, recoveries = self._load_prev()
        entries = dict(salvaged)
        from_prev = [k for k in previous if k not in entries]
        entries.update({k: previous[k] for k in from_prev})
        lost = sorted(named_entry_ids((raw or b"").decode("utf-8", "replace")) - entries.keys())
        recovery = {
            "at": time.time(), "ledger": str(self.path), "reason": reason,
            "set_aside_as": aside.name if aside else None, "salvaged": len(salvaged),
            "from_previous_version": len(from_prev), "lost": lost[:200],
        }
        recoveries = [*recoveries, recovery]
        self._write(entries, recoveries)
        log.error(
            "batch ledger %s is unreadable (%s)%s; recovered %d entries (%d still readable in it, "
            "%d from its previous version %s)%s. Chunks without an entry are looked up by their "
            "batch metadata (OpenAI) or submitted again (Anthropic).",
            self.path, reason, f"; set aside as {aside.name}" if aside else "", len(entries),
            len(salvaged), len(from_prev), self.prev_path.name,
            f"; {len(lost)} entries lost: {', '.join(lost[:5])}" if lost else "",
        )
        return entries, recoveries

    def recoveries(self) -> list[dict[str, Any]]:
        """Every time this ledger had to be rebuilt: when, why, what was recovered and lost."""
        with self._locked():
            return self._load()[1]

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

    def _write(self, entries: dict[str, LedgerEntry], recoveries: list[dict[str, Any]] | None = None) -> None:
        """Atomic replace (temp file, fsync, rename, fsync of the directory); the replaced
        version stays as ``*.prev`` (hard link to its unchanged bytes)."""
        doc: dict[str, Any] = {"version": 1, "entries": {k: v.model_dump(mode="json") for k, v in entries.items()}}
        if recoveries:
            doc["recoveries"] = recoveries
        payload = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        if self.path.exists():
            self._keep_previous(tmp)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _keep_previous(self, tmp: Path) -> None:
        prev_tmp = tmp.with_name(tmp.name + ".prev")
        try:
            os.link(self.path, prev_tmp)  # the current file is never changed in place
        except OSError:  # a filesystem without hard links
            shutil.copyfile(self.path, prev_tmp)
        os.replace(prev_tmp, self.prev_path)

    def put(self, entry: LedgerEntry) -> LedgerEntry:
        """Insert or replace ``entry`` (durably, before returning)."""
        with self._locked():
            entries, recoveries = self._load()
            entry.updated_at = time.time()
            entries[entry.entry_id] = entry
            self._write(entries, recoveries)
        return entry

    def update(self, eid: str, **fields: Any) -> LedgerEntry:
        """Set ``fields`` on entry ``eid`` (durably, before returning)."""
        return self.modify(eid, lambda e: e.model_copy(update=fields))

    def modify(self, eid: str, fn: Callable[[LedgerEntry], LedgerEntry]) -> LedgerEntry:
        with self._locked():
            entries, recoveries = self._load()
            new = fn(entries[eid])
            new.updated_at = time.time()
            entries[eid] = new
            self._write(entries, recoveries)
        return new

    def claimed_batch_ids(self) -> set[str]:
        """Batch ids already attached to some entry (a lost-create search must skip them)."""
        return {e.batch_id for e in self.entries().values() if e.batch_id}
