"""Merge many judges' judgments into one consensus per pair and per candidate.

Several judges rarely agree on everything, and one judge rarely agrees with itself when the two
candidates are shown the other way round. This module turns a judgments frame
(``judgeflow.schemas.JUDGMENTS_SCHEMA``) into two consensus frames, with every judge's own
verdict and feedback kept beside the merged one so that a reviewer can see *why* a pair exists.

Policies, stated once (``docs/consensus.md`` says the same at more length):

* **Abstentions.** A judgment with ``status == "failed"`` (or an ok one without a usable verdict
  or score) is an abstention: it neither votes nor counts towards the quorum. A judge that
  abstained on an item is still listed beside it, with a null verdict/score, so gaps stay visible.
* **Quorum.** An item needs at least ``min_judges`` non-abstaining judges; below that its outcome
  is ``"no_quorum"`` (pairwise) or its score is null (absolute), and no pair is built from it.
* **Both orders, one judge.** A pairwise judge's verdicts on (i, j) shown as AB and as BA combine
  into one verdict per unordered pair: if the orders agree, that verdict; if they disagree
  (including a tie against a win), ``"tie"`` with ``position_inconsistent`` set (FastChat's rule).
  A judge with only one usable order keeps that order's verdict.
* **Across judges.** Weighted plurality over the three options "A" (the lower candidate index
  wins), "B" (the higher wins) and "tie": the option with the most judge weight wins. When the
  greatest weight is shared by two options (A against B, or a win against "tie"), the outcome is
  a tie, handled by ``tie_policy``:
    - ``"tie"`` (default): kept as a tie: no preference pair, counts half a win in rankings;
    - ``"drop"``: the item is removed from the consensus (no pair, not used in rankings);
    - ``"first-judge"``: the verdict of the highest-priority judge that decided (``priority``,
      then weight descending, then name) breaks the tie; if no judge decided, it stays a tie.
  ``agreement`` is the share of voting weight behind the merged verdict.
* **Scores.** Per (row, candidate): weighted mean (``score_method="mean"``) or plain median
  (``"median"``, weights ignored: the median is the robust choice) of the judges' scores, with
  spread (std with ddof=0, min, max).
* **Unanimity.** ``unanimous`` is true when every voting judge gave the same verdict;
  ``unanimous_only`` asks ``judgeflow.pairs.build_pairs`` to keep only unanimous pairs.

All work is polars expressions over the whole frame: no Python loop touches a row. ``merge``
returns its frames in no particular order (sorting a million rows that carry per-judge lists
costs more than the merge itself); ``Consensus.sorted()`` puts them in key order (``SORT_KEYS``),
which is what a build publishes: identical judgments then give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from judgeflow.specs import JudgeSpec

TiePolicy = Literal["tie", "drop", "first-judge"]
ScoreMethod = Literal["mean", "median"]

#: Per judge, per unordered pair: the judge's combined verdict over both orders.
VERDICTS_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.String(),
    "candidate_a": pl.Int32(),  # the lower candidate index of the pair
    "candidate_b": pl.Int32(),  # the higher candidate index
    "judge": pl.String(),
    "verdict": pl.String(),  # "A" (candidate_a wins) | "B" | "tie" | null (abstained)
    "position_inconsistent": pl.Boolean(),
    "both_orders": pl.Boolean(),  # both AB and BA gave a usable verdict
    "weight": pl.Float64(),
    "feedback": pl.String(),
    "judge_model": pl.String(),
    "template_hash": pl.String(),
}

#: Per judge, per (row, candidate): the judge's score.
JUDGE_SCORES_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.String(),
    "candidate": pl.Int32(),
    "judge": pl.String(),
    "score": pl.Float64(),  # null: abstained
    "weight": pl.Float64(),
    "feedback": pl.String(),
    "judge_model": pl.String(),
    "template_hash": pl.String(),
}

_VOTE_STRUCT = pl.Struct(
    {
        "judge": pl.String(),
        "verdict": pl.String(),
        "weight": pl.Float64(),
        "position_inconsistent": pl.Boolean(),
        "feedback": pl.String(),
        "judge_model": pl.String(),
        "template_hash": pl.String(),
    }
)

_SCORE_STRUCT = pl.Struct(
    {
        "judge": pl.String(),
        "score": pl.Float64(),
        "weight": pl.Float64(),
        "feedback": pl.String(),
        "judge_model": pl.String(),
        "template_hash": pl.String(),
    }
)

#: Merged pairwise consensus, one row per (row, unordered candidate pair).
PAIRWISE_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.String(),
    "candidate_a": pl.Int32(),
    "candidate_b": pl.Int32(),
    "outcome": pl.String(),  # "win" | "tie" | "no_quorum"
    "verdict": pl.String(),  # "A" | "B" | "tie" | null (no quorum)
    "winner": pl.Int32(),  # winning candidate index, null unless outcome == "win"
    "loser": pl.Int32(),
    "tie_broken": pl.Boolean(),  # the winner came from tie_policy "first-judge"
    "n_judges": pl.UInt32(),  # judges that voted (abstentions excluded)
    "n_abstained": pl.UInt32(),
    "votes_a": pl.UInt32(),
    "votes_b": pl.UInt32(),
    "votes_tie": pl.UInt32(),
    "weight_a": pl.Float64(),
    "weight_b": pl.Float64(),
    "weight_tie": pl.Float64(),
    "agreement": pl.Float64(),  # share of voting weight behind the merged verdict
    "unanimous": pl.Boolean(),
    "position_inconsistent": pl.UInt32(),  # judges whose two orders disagreed
    "by_judge": pl.List(_VOTE_STRUCT),
}

#: Merged absolute consensus, one row per (row, candidate).
SCORES_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.String(),
    "candidate": pl.Int32(),
    "score": pl.Float64(),  # null when below quorum
    "score_mean": pl.Float64(),  # weighted mean
    "score_median": pl.Float64(),
    "score_std": pl.Float64(),  # population std (ddof=0): 0 for one judge
    "score_min": pl.Float64(),
    "score_max": pl.Float64(),
    "n_judges": pl.UInt32(),
    "n_abstained": pl.UInt32(),
    "by_judge": pl.List(_SCORE_STRUCT),
}


class ConsensusPolicy(BaseModel):
    """How judgments merge: weights, ties, quorum and unanimity (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    score_method: ScoreMethod = "mean"
    weights: dict[str, float] = Field(default_factory=dict)  # judge name -> weight
    default_weight: float = Field(default=1.0, ge=0.0)  # for judges not named in ``weights``
    tie_policy: TiePolicy = "tie"
    priority: list[str] = Field(default_factory=list)  # tie_policy "first-judge": who goes first
    min_judges: int = Field(default=1, ge=1)  # quorum of non-abstaining judges per item
    unanimous_only: bool = False  # build_pairs keeps only pairs every voting judge backs

    @classmethod
    def from_specs(
        cls, specs: Iterable[JudgeSpec], *, weights: Mapping[str, float] | None = None, **settings: Any
    ) -> ConsensusPolicy:
        """A policy whose weights are the specs' ``weight`` (explicit ``weights`` win)."""
        merged = {spec.name: spec.weight for spec in specs} | dict(weights or {})
        return cls(weights=merged, **settings)

    def weight_of(self, judge: str) -> float:
        return self.weights.get(judge, self.default_weight)

    def judge_rank(self, judges: Iterable[str]) -> dict[str, int]:
        """Priority of each judge for ``first-judge``: ``priority`` list, weight desc, name."""
        listed = {name: i for i, name in enumerate(self.priority)}
        ordered = sorted(
            set(judges),
            key=lambda j: (listed.get(j, len(listed)), -self.weight_of(j), j),
        )
        return {judge: rank for rank, judge in enumerate(ordered)}


#: The key each consensus frame is sorted by in ``Consensus.sorted()``; unique per row.
SORT_KEYS: dict[str, list[str]] = {
    "pairwise": ["row_id", "candidate_a", "candidate_b"],
    "scores": ["row_id", "candidate"],
    "verdicts": ["row_id", "candidate_a", "candidate_b", "judge"],
    "judge_scores": ["row_id", "candidate", "judge"],
}


@dataclass(frozen=True)
class Consensus:
    """What ``merge`` returns: merged frames plus the per-judge long frames they came from.

    ``verdicts`` and ``judge_scores`` are what ``judgeflow.agreement`` and
    ``judgeflow.pairs`` reuse, so the judgments are read once.
    """

    pairwise: pl.DataFrame  # PAIRWISE_SCHEMA
    scores: pl.DataFrame  # SCORES_SCHEMA
    verdicts: pl.DataFrame  # VERDICTS_SCHEMA
    judge_scores: pl.DataFrame  # JUDGE_SCORES_SCHEMA
    policy: ConsensusPolicy

    def sorted(self) -> Consensus:
        """This consensus with every frame in ``SORT_KEYS`` order (a stable, total order:
        the keys are unique), so what is computed from it or written from it never depends
        on the order polars' parallel group-bys happened to produce."""
        return replace(
            self,
            **{name: getattr(self, name).sort(keys, maintain_order=True) for name, keys in SORT_KEYS.items()},
        )


def _weight_expr(policy: ConsensusPolicy) -> pl.Expr:
    return (
        pl.col("judge")
        .replace_strict(policy.weights, default=policy.default_weight, return_dtype=pl.Float64)
        .cast(pl.Float64)
    )


def _ok() -> pl.Expr:
    return pl.col("status").fill_null("ok") == "ok"


def judge_verdicts(judgments: pl.DataFrame | pl.LazyFrame, policy: ConsensusPolicy) -> pl.DataFrame:
    """One verdict per (judge, row, unordered pair), both shown orders combined.

    Verdicts are re-expressed in the pair's canonical orientation (``candidate_a`` < ``candidate_b``):
    "A" means the lower index won. The winner is read from ``verdict`` in the shown order (with
    ``preferred`` as a fallback for records that only carry the index). Votes are coded as
    small integers (+1 lower wins, -1 higher wins, 0 tie) so that "do the orders agree" is a
    min == max test rather than a string comparison; feedback keeps the first text per order,
    labelled "[AB]"/"[BA]" (string aggregation is the costly part of this step). Two usable
    verdicts that disagree make a flagged tie whatever their orders, so a judge that contradicts
    itself on a repeated request is treated like one swayed by position.
    """
    lf = judgments.lazy().filter(
        pl.col("candidate_b").is_not_null() & (pl.col("kind").fill_null("") != "absolute")
    )
    lo = pl.min_horizontal("candidate_a", "candidate_b").cast(pl.Int32)
    hi = pl.max_horizontal("candidate_a", "candidate_b").cast(pl.Int32)
    shown_winner = (
        pl.when(pl.col("verdict") == "A")
        .then(pl.col("candidate_a"))
        .when(pl.col("verdict") == "B")
        .then(pl.col("candidate_b"))
        .otherwise(pl.col("preferred"))
    )
    code = (
        pl.when(~_ok())
        .then(pl.lit(None, dtype=pl.Int8))
        .when(pl.col("verdict") == "tie")
        .then(pl.lit(0, dtype=pl.Int8))
        .when(pl.col("_winner") == pl.col("_lo"))
        .then(pl.lit(1, dtype=pl.Int8))
        .when(pl.col("_winner") == pl.col("_hi"))
        .then(pl.lit(-1, dtype=pl.Int8))
        .otherwise(pl.lit(None, dtype=pl.Int8))
    )
    voted = pl.col("_code").is_not_null()
    lowest, highest = pl.col("_lowest"), pl.col("_highest")
    out = (
        lf.with_columns(_lo=lo, _hi=hi, _winner=shown_winner)
        .with_columns(_code=code)
        .group_by("row_id", "_lo", "_hi", "judge")
        .agg(
            pl.col("_code").min().alias("_lowest"),
            pl.col("_code").max().alias("_highest"),
            (voted & (pl.col("order") == "AB")).any().alias("_ab"),
            (voted & (pl.col("order") == "BA")).any().alias("_ba"),
            pl.col("feedback").filter(pl.col("order") == "AB").first().alias("_fb_ab"),
            pl.col("feedback").filter(pl.col("order").fill_null("") != "AB").first().alias("_fb_ba"),
            pl.col("judge_model").drop_nulls().first().alias("judge_model"),
            pl.col("template_hash").drop_nulls().first().alias("template_hash"),
        )
        .with_columns(
            pl.when(lowest.is_null())
            .then(pl.lit(None, dtype=pl.String))
            .when(lowest != highest)
            .then(pl.lit("tie"))
            .otherwise(lowest.replace_strict({1: "A", -1: "B", 0: "tie"}, return_dtype=pl.String))
            .alias("verdict"),
            (lowest != highest).fill_null(False).alias("position_inconsistent"),
            (pl.col("_ab") & pl.col("_ba")).alias("both_orders"),
            pl.concat_str(
                [pl.lit("[AB] ") + pl.col("_fb_ab"), pl.lit("[BA] ") + pl.col("_fb_ba")],
                separator="\n",
                ignore_nulls=True,
            )
            .replace("", None)
            .alias("feedback"),
            _weight_expr(policy).alias("weight"),
        )
        .rename({"_lo": "candidate_a", "_hi": "candidate_b"})
        .select(list(VERDICTS_SCHEMA))
        .cast(VERDICTS_SCHEMA)  # type: ignore[arg-type]
    )
    return out.collect()


def judge_scores(judgments: pl.DataFrame | pl.LazyFrame, policy: ConsensusPolicy) -> pl.DataFrame:
    """One score per (judge, row, candidate) from absolute judgments (mean of repeats).

    Repeats are rare (a resumed run that judged an item twice), so the aggregation runs only when
    there are any: grouping 1M rows to concatenate 1M single feedback texts costs more than the
    whole rest of the merge.
    """
    frame = judgments.lazy().filter(pl.col("kind") == "absolute").collect()
    good = _ok() & pl.col("score").is_not_null() & pl.col("score").is_finite()
    keys = ["row_id", "candidate_a", "judge"]
    lf = frame.lazy().with_columns(pl.when(good).then(pl.col("score")).alias("score"))
    if frame.select(pl.struct(keys).is_duplicated().any()).item():
        lf = lf.group_by(keys).agg(
            pl.col("score").mean(),
            pl.col("feedback").drop_nulls().str.join("\n").replace("", None).alias("feedback"),
            pl.col("judge_model").drop_nulls().first(),
            pl.col("template_hash").drop_nulls().first(),
        )
    out = (
        lf.with_columns(_weight_expr(policy).alias("weight"))
        .rename({"candidate_a": "candidate"})
        .select(list(JUDGE_SCORES_SCHEMA))
        .cast(JUDGE_SCORES_SCHEMA)  # type: ignore[arg-type]
    )
    return out.collect()


def _by_name(frame: pl.DataFrame) -> pl.Expr:
    """Sort key: the judge's position in name order, as a small integer.

    Judges are few and rows many; sorting integers is much cheaper than comparing strings.
    """
    names = sorted(frame.get_column("judge").unique().drop_nulls().to_list())
    return pl.col("judge").replace_strict(
        {name: i for i, name in enumerate(names)}, default=len(names), return_dtype=pl.UInt32
    )


def merge_verdicts(verdicts: pl.DataFrame, policy: ConsensusPolicy) -> pl.DataFrame:
    """Weighted plurality across judges per (row, pair); see the module docstring for ties."""
    if verdicts.is_empty():
        return pl.DataFrame(schema=PAIRWISE_SCHEMA)
    ranks = policy.judge_rank(verdicts.get_column("judge").unique().to_list())
    v = pl.col("verdict")
    w = pl.col("weight")
    first_decided = (
        pl.when(v.is_in(["A", "B"])).then(v).sort_by("_rank").drop_nulls().first()
        if policy.tie_policy == "first-judge"
        else pl.lit(None, dtype=pl.String)
    )
    merged = (
        verdicts.lazy()
        .with_columns(
            pl.col("judge").replace_strict(ranks, return_dtype=pl.Int64).alias("_rank"),
            # one string comparison per row up front; the group sums then run on numbers
            (v == "A").fill_null(False).alias("_a"),
            (v == "B").fill_null(False).alias("_b"),
            (v == "tie").fill_null(False).alias("_t"),
        )
        .with_columns(
            pl.when(pl.col("_a")).then(w).otherwise(0.0).alias("_wa"),
            pl.when(pl.col("_b")).then(w).otherwise(0.0).alias("_wb"),
            pl.when(pl.col("_t")).then(w).otherwise(0.0).alias("_wt"),
        )
        # groups keep the input's row order: one global sort beats a sort inside every group
        .sort(_by_name(verdicts))
        .group_by("row_id", "candidate_a", "candidate_b")
        .agg(
            v.is_not_null().sum().cast(pl.UInt32).alias("n_judges"),
            v.is_null().sum().cast(pl.UInt32).alias("n_abstained"),
            pl.col("_a").sum().cast(pl.UInt32).alias("votes_a"),
            pl.col("_b").sum().cast(pl.UInt32).alias("votes_b"),
            pl.col("_t").sum().cast(pl.UInt32).alias("votes_tie"),
            pl.col("_wa").sum().alias("weight_a"),
            pl.col("_wb").sum().alias("weight_b"),
            pl.col("_wt").sum().alias("weight_tie"),
            pl.col("position_inconsistent").sum().cast(pl.UInt32).alias("position_inconsistent"),
            first_decided.alias("_first_decided"),
            pl.struct(
                "judge", "verdict", "weight", "position_inconsistent", "feedback",
                "judge_model", "template_hash",
            ).alias("by_judge"),
        )
    )
    total = pl.col("weight_a") + pl.col("weight_b") + pl.col("weight_tie")
    top = pl.max_horizontal("weight_a", "weight_b", "weight_tie")
    eps = 1e-9 * pl.max_horizontal(pl.lit(1.0), total)  # sums of float weights: compare with slack

    def at_top(col: str) -> pl.Expr:
        return pl.col(col) >= pl.col("_top") - pl.col("_eps")

    a_only = at_top("weight_a") & ~at_top("weight_b") & ~at_top("weight_tie")
    b_only = at_top("weight_b") & ~at_top("weight_a") & ~at_top("weight_tie")
    quorum = pl.col("n_judges") >= policy.min_judges
    plural = (
        pl.when(~quorum | (pl.col("_total") <= 0))
        .then(pl.lit(None, dtype=pl.String))
        .when(a_only)
        .then(pl.lit("A"))
        .when(b_only)
        .then(pl.lit("B"))
        .otherwise(pl.lit("tie"))
    )
    break_tie = (
        (pl.col("_plural") == "tie") & pl.col("_first_decided").is_not_null()
        if policy.tie_policy == "first-judge"
        else pl.lit(False)
    )
    verdict = pl.when(pl.col("_tie_broken")).then(pl.col("_first_decided")).otherwise(pl.col("_plural"))
    behind = (
        pl.when(pl.col("verdict") == "A")
        .then(pl.col("weight_a"))
        .when(pl.col("verdict") == "B")
        .then(pl.col("weight_b"))
        .otherwise(pl.col("weight_tie"))
    )
    out = (
        merged.with_columns(
            _total=total,
            _top=top,
            _eps=eps,
            # every voting judge said the same thing: exactly one vote count is non-zero
            unanimous=(
                (pl.col("votes_a") > 0).cast(pl.Int8)
                + (pl.col("votes_b") > 0).cast(pl.Int8)
                + (pl.col("votes_tie") > 0).cast(pl.Int8)
            )
            == 1,
        )
        .with_columns(_plural=plural)
        .with_columns(_tie_broken=break_tie)
        .with_columns(verdict=verdict, tie_broken=pl.col("_tie_broken"))
        .with_columns(
            outcome=pl.when(pl.col("verdict").is_null())
            .then(pl.lit("no_quorum"))
            .when(pl.col("verdict") == "tie")
            .then(pl.lit("tie"))
            .otherwise(pl.lit("win")),
            winner=pl.when(pl.col("verdict") == "A")
            .then(pl.col("candidate_a"))
            .when(pl.col("verdict") == "B")
            .then(pl.col("candidate_b")),
            loser=pl.when(pl.col("verdict") == "A")
            .then(pl.col("candidate_b"))
            .when(pl.col("verdict") == "B")
            .then(pl.col("candidate_a")),
            agreement=pl.when(pl.col("verdict").is_not_null() & (pl.col("_total") > 0)).then(
                behind / pl.col("_total")
            ),
        )
    )
    if policy.tie_policy == "drop":
        out = out.filter(pl.col("outcome") != "tie")
    return (
        out.select(list(PAIRWISE_SCHEMA))
        .cast(PAIRWISE_SCHEMA)  # type: ignore[arg-type]
        .collect()
    )


def merge_scores(judge_scores_frame: pl.DataFrame, policy: ConsensusPolicy) -> pl.DataFrame:
    """Weighted mean or median of the judges' scores per (row, candidate), with spread."""
    if judge_scores_frame.is_empty():
        return pl.DataFrame(schema=SCORES_SCHEMA)
    s = pl.col("score")
    voted = s.is_not_null()
    merged = (
        judge_scores_frame.lazy()
        # row-wise products first: plain sums per group are far cheaper than filtered ones
        .with_columns(
            _sw=s * pl.col("weight"),
            _w=pl.when(voted).then(pl.col("weight")).otherwise(0.0),
        )
        .sort(_by_name(judge_scores_frame))  # groups keep this order: by_judge comes out sorted
        .group_by("row_id", "candidate")
        .agg(
            pl.when(pl.col("_w").sum() > 0)
            .then(pl.col("_sw").sum() / pl.col("_w").sum())
            .alias("score_mean"),
            s.median().alias("score_median"),
            s.std(ddof=0).alias("score_std"),
            s.min().alias("score_min"),
            s.max().alias("score_max"),
            voted.sum().cast(pl.UInt32).alias("n_judges"),
            s.is_null().sum().cast(pl.UInt32).alias("n_abstained"),
            pl.struct("judge", "score", "weight", "feedback", "judge_model", "template_hash").alias(
                "by_judge"
            ),
        )
        .with_columns(
            score=pl.when(pl.col("n_judges") >= policy.min_judges).then(
                pl.col("score_mean") if policy.score_method == "mean" else pl.col("score_median")
            )
        )
    )
    return (
        merged.select(list(SCORES_SCHEMA))
        .cast(SCORES_SCHEMA)  # type: ignore[arg-type]
        .collect()
    )


def merge(judgments: pl.DataFrame | pl.LazyFrame, policy: ConsensusPolicy | None = None) -> Consensus:
    """Merge a judgments frame (``JUDGMENTS_SCHEMA``) into pairwise and absolute consensus.

    Pairwise/relative judgments feed ``Consensus.pairwise``; absolute ones ``Consensus.scores``.
    Failed judgments abstain; ties, quorum and unanimity follow ``policy`` (module docstring).
    """
    policy = policy or ConsensusPolicy()
    if isinstance(judgments, pl.LazyFrame):
        judgments = judgments.collect()
    verdicts = judge_verdicts(judgments, policy)
    scores_long = judge_scores(judgments, policy)
    return Consensus(
        pairwise=merge_verdicts(verdicts, policy),
        scores=merge_scores(scores_long, policy),
        verdicts=verdicts,
        judge_scores=scores_long,
        policy=policy,
    )
