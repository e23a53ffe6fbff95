"""One judgment record per answered (or failed) request, and a sink that streams them to disk.

Live, batch and GPU judging all end here, so a judgment looks the same whichever path made it.
Records are plain dicts with the keys of ``JUDGMENTS_SCHEMA`` (no pydantic per row on the hot
path); ``JudgmentSink`` buffers them and writes one Parquet part per flush, so memory stays flat
however large the dataset is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from judgeflow.schemas import JUDGMENTS_SCHEMA
from judgeflow.specs import JudgeSpec


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
) -> dict[str, Any]:
    """Build the record for one request. ``error`` set means failed-with-reason, never guessed.

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
        "feedback": feedback,
        "raw_output": raw_output,
        "status": "failed" if failed else "ok",
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


def records_frame(records: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Records as a DataFrame with exactly ``JUDGMENTS_SCHEMA``."""
    return pl.DataFrame(list(records), schema=JUDGMENTS_SCHEMA)


class JudgmentSink:
    """Streams judgment records into ``directory/part-NNNNN.parquet`` files.

    ``flush_every`` bounds memory; ``close()`` writes what is left. ``read_judgments(directory)``
    reads all parts back lazily.
    """

    def __init__(self, directory: str | Path, *, prefix: str = "part", flush_every: int = 5_000) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.flush_every = flush_every
        self._buffer: list[dict[str, Any]] = []
        self._parts = len(list(self.directory.glob(f"{prefix}-*.parquet")))
        self.written = 0

    def add(self, record: dict[str, Any]) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.add(record)

    def flush(self) -> None:
        if not self._buffer:
            return
        path = self.directory / f"{self.prefix}-{self._parts:05d}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        records_frame(self._buffer).write_parquet(tmp)
        tmp.replace(path)  # atomic: a crash never leaves a half-written part
        self._parts += 1
        self.written += len(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        self.flush()

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
