"""One judgment record per answered (or failed) request, and a sink that streams them to disk.

Live, batch and GPU judging all end here, so a judgment looks the same whichever path made it.
Records are plain dicts with the keys of ``JUDGMENTS_SCHEMA`` (no pydantic per row on the hot
path); ``JudgmentSink`` buffers them and writes one Parquet part per flush, so memory stays flat
however large the dataset is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import re
import time
from pathlib import Path
from typing import Any

import polars as pl

from judgeflow.schemas import JUDGMENTS_SCHEMA
from judgeflow.specs import JudgeSpec


#: Characters of a judge's reply kept at each end when it is stored (``raw_output``, ``feedback``).
RAW_HEAD_CHARS = 16_384
RAW_TAIL_CHARS = 16_384


def cap_text(text: str | None) -> str | None:
    """``text`` with its middle cut when longer than head + tail, the cut said in the text.

    Why: a judge's reply is untrusted and unbounded (a hostile or runaway 1 MB reply), and every
    record is kept in the store, the dataset and its copies. The head shows what the judge
    started with, the tail holds the verdict; a visible marker says how many characters were
    cut, so the stored text never passes for the whole reply (no schema change needed).
    """
    if text is None or len(text) <= RAW_HEAD_CHARS + RAW_TAIL_CHARS:
        return text
    cut = len(text) - RAW_HEAD_CHARS - RAW_TAIL_CHARS
    return (
        f"{text[:RAW_HEAD_CHARS]}\n[... judgeflow cut {cut} characters of this text here; "
        f"{len(text)} in all ...]\n{text[-RAW_TAIL_CHARS:]}"
    )


def judgment_record(
    spec: JudgeSpec,
    request: Mapping[str, Any],
    *,
    score: float | None = None,
    verdict: str | None = None,
    feedback: str | None = None,
    raw_output: str | None = None,
    error: str | None = None,
    attempts: int = 1,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: float = 0.0,
    template_hash: str | None = None,
    spec_hash: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Build the record for one request. ``error`` set means failed-with-reason, never guessed.

    ``status`` (with ``error``) says what kind of failure it is, see ``FAILURE_STATUSES``:
    ``failed`` (the judge's own answer is unusable: final), ``error`` (infrastructure: auth,
    connection, 5xx/429 after retries, timeout: asked again next run) or ``not_sent`` (budget,
    deadline, cancel: asked again next run). Defaults to ``failed``.

    ``request`` carries the keys of ``judgeflow.specs.REQUESTS_SCHEMA``. For pairwise kinds the
    shown order is kept (``verdict`` A/B) and ``preferred`` names the winning candidate index.
    """
    failed = error is not None
    a, b = request["candidate_a"], request.get("candidate_b")
    preferred: int | None = None
    if not failed and verdict in ("A", "B") and b is not None:
        preferred = a if verdict == "A" else b
    return {
        "request_id": request["request_id"],
        "row_id": request["row_id"],
        "judge": spec.name,
        "kind": spec.kind,
        "candidate_a": a,
        "candidate_b": b,
        "order": request.get("order"),
        "score": None if failed else score,
        "verdict": None if failed else verdict,
        "preferred": preferred,
        "feedback": cap_text(feedback),
        "raw_output": cap_text(raw_output),
        "status": (status or "failed") if failed else "ok",
        "error": error,
        "attempts": attempts,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
        "judge_model": spec.model,
        "template_hash": template_hash,
        "spec_hash": spec_hash or spec.spec_hash(),
        "content_hash": request.get("content_hash"),
    }


#: statuses of a record with ``error`` set; only ``failed`` is final (unless ``retry_failed``)
FAILURE_STATUSES: tuple[str, ...] = ("failed", "error", "not_sent")


def records_frame(records: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Records as a DataFrame with exactly ``JUDGMENTS_SCHEMA``."""
    return pl.DataFrame(list(records), schema=JUDGMENTS_SCHEMA)


class JudgmentSink:
    """Streams judgment records into ``directory/{prefix}-NNNNN.parquet`` parts.

    A part is written when ``flush_every`` records are buffered or ``flush_interval_s`` has
    passed since the last write, whichever comes first: memory stays bounded, and a process
    killed mid-chunk loses at most a few seconds of paid answers (a resumed chunk skips every
    request already on disk). ``close()`` writes what is left and compacts this sink's parts
    into one file, so a long chunk does not leave hundreds of small files behind.
    ``read_judgments(directory)`` reads all parts back lazily.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        prefix: str = "part",
        flush_every: int = 5_000,
        flush_interval_s: float = 5.0,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self._buffer: list[dict[str, Any]] = []
        self._mine: list[Path] = []
        self._next = self._next_index()
        self._last_flush = time.monotonic()
        self.written = 0

    def _next_index(self) -> int:
        """One past the highest part number on disk (never a reused number: parts are deleted
        by compaction, and a count would point at an existing file). Parts the store set aside
        (``*.parquet.corrupt``) keep their numbers too, so a new part never takes their name."""
        numbers = [
            int(m.group(1))
            for path in self.directory.glob(f"{self.prefix}-*.parquet*")
            if (m := re.fullmatch(rf"{re.escape(self.prefix)}-(\d+)\.parquet(?:\.corrupt.*)?", path.name))
        ]
        return max(numbers, default=-1) + 1

    def _write(self, frame: pl.DataFrame) -> Path:
        path = self.directory / f"{self.prefix}-{self._next:05d}.parquet"
        self._next += 1
        tmp = path.with_suffix(".parquet.tmp")
        frame.write_parquet(tmp)
        tmp.replace(path)  # atomic: a crash never leaves a half-written part
        return path

    def add(self, record: dict[str, Any]) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.add(record)

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        self._mine.append(self._write(records_frame(self._buffer)))
        self.written += len(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        self.flush()
        if len(self._mine) > 1:
            # Combined file first, originals after: a crash in between leaves duplicates of the
            # same records (readers keep one per request id), never a gap.
            combined = self._write(pl.concat([pl.read_parquet(p) for p in self._mine]))
            for path in self._mine:
                path.unlink(missing_ok=True)
            self._mine = [combined]

    def __enter__(self) -> JudgmentSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_judgments(directory: str | Path) -> pl.LazyFrame:
    """All judgment parts under ``directory`` (recursively) as one lazy frame."""
    directory = Path(directory)
    files = sorted(directory.rglob("*.parquet"))
    if not files:
        return pl.LazyFrame(schema=JUDGMENTS_SCHEMA)
    return pl.scan_parquet(files, schema=JUDGMENTS_SCHEMA)
