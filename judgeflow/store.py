"""The judgment store: every judgment ever made for a dataset, keyed by request id.

A request id is a hash of (row content, judge spec, candidates, order) — see
``judgeflow.specs.expand_requests`` — so "has this exact question already been answered by this
exact judge?" is a set lookup. A nightly build therefore judges only rows it has not seen, and
running the same build twice sends nothing the second time.

Layout: ``{root}/judgments/{judge}/{spec_hash}/*.parquet`` (parts written by ``JudgmentSink``),
and ``{root}/batches/`` for the batch ledgers, so a crashed or repeated build re-attaches to
batches it already paid for whatever its run id.

Failed judgments are kept (with their reason) and count as answered, except those that were
never sent (budget cap, deadline): those are asked again next time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from judgeflow.judging.records import read_judgments
from judgeflow.schemas import JUDGMENTS_SCHEMA
from judgeflow.specs import JudgeSpec

#: error prefixes of judgments that were never sent to a judge and must be retried next run
NOT_SENT_MARKERS: tuple[str, ...] = ("budget cap", "not sent", "deadline")


@dataclass(frozen=True)
class JudgmentStore:
    """A folder of judgment parts, one sub-folder per (judge name, spec hash)."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> JudgmentStore:
        path = Path(root)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def judge_dir(self, spec: JudgeSpec) -> Path:
        """Where ``spec``'s judgments live; a changed spec (new hash) starts a fresh folder."""
        return self.root / "judgments" / spec.name / spec.spec_hash()

    def ledger_dir(self, spec: JudgeSpec) -> Path:
        """Where ``spec``'s batch ledger lives (shared by every run of the dataset)."""
        return self.root / "batches" / spec.name / spec.spec_hash()

    def scan(self, spec: JudgeSpec) -> pl.LazyFrame:
        """All stored judgments of ``spec``; the last record per request id wins."""
        return read_judgments(self.judge_dir(spec)).unique("request_id", keep="last", maintain_order=True)

    def answered_ids(self, spec: JudgeSpec) -> pl.DataFrame:
        """Request ids that need no new request: judged, or failed after being sent."""
        not_sent = pl.lit(False)
        for marker in NOT_SENT_MARKERS:
            not_sent = not_sent | pl.col("error").fill_null("").str.starts_with(marker)
        return (
            self.scan(spec)
            .filter((pl.col("status") == "ok") | ((pl.col("status") == "failed") & ~not_sent))
            .select("request_id")
            .collect()
        )

    def pending(self, spec: JudgeSpec, requests: pl.DataFrame) -> pl.DataFrame:
        """The subset of ``requests`` the store cannot answer yet."""
        return requests.join(self.answered_ids(spec), on="request_id", how="anti")

    def judgments_for(self, spec: JudgeSpec, requests: pl.DataFrame) -> pl.DataFrame:
        """Stored judgments of exactly ``requests`` (this run's view), in JUDGMENTS_SCHEMA."""
        found = self.scan(spec).join(requests.lazy().select("request_id"), on="request_id", how="semi")
        return found.collect().select(list(JUDGMENTS_SCHEMA))
