"""Matching a batch's result lines to the requests it was sent, line by line, trusting nothing.

A result file should hold exactly one line per custom_id sent. When it does not, each problem
costs at most the requests it touches and is recorded as an anomaly for the build report:

* a line that cannot be read (``BadLine``): its request, if the custom_id is still readable,
  fails with status ``error`` (asked again); the rest of the batch is collected;
* a custom_id that was never sent: ignored, an anomaly (a batch where such ids outnumber ours
  is not our batch at all: ``BatchMismatchError``);
* a custom_id twice with the same answer: one is kept, an anomaly;
* a custom_id twice with different answers: neither is trusted, the request fails with status
  ``error`` (asked again), an anomaly. (Before, the later line silently won.)

Every anomaly names the batch and the line (``where``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from judgeflow.batch.types import BadLine, ResultItem

#: Anomalies kept in full per batch (all are counted).
MAX_KEPT = 100


class BatchMismatchError(RuntimeError):
    """A batch returned more custom_ids that are not in its chunk than ones that are."""


def _answer_digest(item: ResultItem) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (item.text, item.error):
        h.update(b"\x00" if part is None else b"\x01" + part.encode("utf-8", "replace"))
    return h.digest()


@dataclass
class Reconciler:
    """Consumes one batch's result items; says which to record and what went wrong."""

    batch_id: str
    known: Collection[str]
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    conflicts: dict[str, str] = field(default_factory=dict)  # custom_id -> why it failed
    unreadable: dict[str, str] = field(default_factory=dict)  # custom_id -> its bad line
    _seen: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # custom_id -> (answer, where)
    known_lines: int = 0
    unknown_lines: int = 0

    def _note(self, kind: str, where: str, custom_id: str | None, detail: str) -> None:
        self.counts[kind] += 1
        if len(self.anomalies) < MAX_KEPT:
            self.anomalies.append({"kind": kind, "batch_id": self.batch_id, "where": where,
                                   "custom_id": custom_id, "detail": detail})

    def add(self, item: ResultItem | BadLine) -> ResultItem | None:
        """The item to record now (the first answer of a custom_id of ours), else None."""
        if isinstance(item, BadLine):
            cid = item.custom_id
            self._note("invalid_line", item.where, cid, item.problem)
            if cid is not None and cid in self.known:
                self.unreadable.setdefault(cid, f"unreadable result line ({item.where}): {item.problem}")
            return None
        if item.custom_id not in self.known:
            self.unknown_lines += 1
            self._note("unknown_custom_id", item.where, item.custom_id, "a custom_id this batch was never sent")
            return None
        self.known_lines += 1
        digest = _answer_digest(item)
        first = self._seen.get(item.custom_id)
        if first is None:
            self._seen[item.custom_id] = (digest, item.where)
            return item
        if first[0] == digest:
            self._note("duplicate_custom_id", item.where, item.custom_id, f"the same answer as {first[1]}")
        else:
            self._note("conflicting_custom_id", item.where, item.custom_id, f"a different answer than {first[1]}")
            self.conflicts.setdefault(
                item.custom_id,
                f"two different answers in the batch results ({first[1]}; {item.where}): neither is used",
            )
        return None

    def answered(self, custom_id: str) -> bool:
        return custom_id in self._seen

    def missing_reason(self, custom_id: str) -> str:
        """Why a request of ours has no usable line (an unreadable one, or none at all)."""
        if custom_id in self.unreadable:
            return self.unreadable[custom_id]
        bad = self.counts["invalid_line"]
        hint = f"; batch {self.batch_id} had {bad} unreadable lines" if bad else ""
        return f"missing from the results of batch {self.batch_id}{hint}"

    def check_ours(self, entry_id: str) -> None:
        """Raise ``BatchMismatchError`` when foreign custom_ids outnumber ours."""
        if self.unknown_lines > self.known_lines:
            raise BatchMismatchError(
                f"batch {self.batch_id} returned {self.unknown_lines} results for custom_ids that "
                f"{entry_id} never sent and only {self.known_lines} for its own: it is not this "
                "chunk's batch; remove its ledger entry to submit the chunk again"
            )


def describe(counts: dict[str, int]) -> str:
    """A report line for anomaly counts: ``"3 (2 invalid_line, 1 conflicting_custom_id)"``."""
    total = sum(counts.values())
    return f"{total} ({', '.join(f'{n} {kind}' for kind, n in sorted(counts.items()))})" if total else "0"


__all__ = ["MAX_KEPT", "BatchMismatchError", "Reconciler", "describe"]
