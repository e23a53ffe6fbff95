"""From judgments to the published dataset's tables: consensus, agreement, pairs, outcomes.

One pure function, shared by the Prefect flow and the Python API, so both publish the same
dataset for the same judgments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from judgeflow.agreement import AgreementReport, compute_agreement
from judgeflow.config import BuildConfig
from judgeflow.consensus import Consensus, ConsensusPolicy, merge
from judgeflow.pairs import build_pairs
from judgeflow.pipeline import row_outcomes


@dataclass(frozen=True)
class Finalized:
    """The tables a build publishes, plus the agreement report."""

    consensus: Consensus
    agreement: AgreementReport
    pairs: pl.DataFrame
    outcomes: pl.DataFrame  # one line per valid row: judged | failed (+ reason)

    def counts(self) -> dict[str, int]:
        """Row and judgment counts for the manifest and the summary artifact."""
        judged = int((self.outcomes["outcome"] == "judged").sum())
        return {
            "rows_judged": judged,
            "rows_failed": self.outcomes.height - judged,
            "pairs": self.pairs.height,
        }


def policy_for(config: BuildConfig) -> ConsensusPolicy:
    """The consensus policy a build config asks for, with the judges' weights."""
    return ConsensusPolicy.from_specs(
        config.judges,
        score_method=config.consensus.score_method,
        tie_policy=config.consensus.tie_policy,
        min_judges=config.consensus.min_judges,
        unanimous_only=config.consensus.unanimous_only,
    )


#: The key each published table is sorted by (unique per row): identical inputs must give
#: byte-identical files, whatever order the store's parts or polars' group-bys produced.
TABLE_ORDER: dict[str, list[str]] = {
    "judgments": ["row_id", "judge", "request_id"],
    "consensus_pairwise": ["row_id", "candidate_a", "candidate_b"],
    "consensus_scores": ["row_id", "candidate"],
    "pairs": ["row_id", "chosen_index", "rejected_index"],
    "failed_rows": ["row_id"],
}


def finalize(config: BuildConfig, rows: pl.DataFrame, judgments: pl.DataFrame, run_id: str) -> Finalized:
    """Merge the judges, measure their agreement and draw the preference pairs.

    Judgments are merged in a fixed order and the consensus is sorted before anything is
    computed from it, so the same judgments give the same numbers to the last bit.
    """
    if judgments.height:
        judgments = judgments.sort(TABLE_ORDER["judgments"], maintain_order=True)
    consensus = merge(judgments, policy_for(config)).sorted()
    agreement = compute_agreement(consensus)
    pairs = build_pairs(
        rows,
        consensus,
        source=config.pairs.source,
        strategy=config.pairs.strategy,
        min_margin=config.pairs.min_margin,
        max_length_ratio=config.pairs.max_length_ratio,
        run_id=run_id,
    )
    return Finalized(consensus, agreement, pairs, row_outcomes(rows, judgments))


def published_tables(result: Finalized, judgments: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The tables a build writes into its run folder, by file stem, each in ``TABLE_ORDER``."""
    tables = {
        "judgments": judgments,
        "consensus_pairwise": result.consensus.pairwise,
        "consensus_scores": result.consensus.scores,
        "pairs": result.pairs,
        "failed_rows": result.outcomes.filter(pl.col("outcome") == "failed").select("row_id", "reason"),
    }
    return {
        name: frame.sort(TABLE_ORDER[name], maintain_order=True) if frame.height else frame
        for name, frame in tables.items()
    }


def judge_summary(judgments: pl.DataFrame) -> pl.DataFrame:
    """Per judge: judgments ok/failed, parse failures, tokens and dollars."""
    return (
        judgments.group_by("judge", "judge_model")
        .agg(
            pl.len().alias("judgments"),
            (pl.col("status") == "ok").sum().alias("ok"),
            (pl.col("status") != "ok").sum().alias("failed"),  # every failure status
            pl.col("error").fill_null("").str.contains("(?i)parse").sum().alias("parse_failures"),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
            pl.col("cost_usd").sum().round(6),
        )
        .sort("judge")
    )


def agreement_summary(report: AgreementReport) -> dict[str, Any]:
    """The few agreement numbers worth a line in a summary table."""
    out: dict[str, Any] = {
        "alpha_verdicts": report.alpha_verdicts,
        "alpha_scores": report.alpha_scores,
    }
    for item in report.position_consistency:
        out[f"position_consistency[{item.judge}]"] = item.model_dump().get("rate")
    return out
