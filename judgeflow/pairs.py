"""Turn consensus into TRL/DPO-ready preference pairs (``judgeflow.schemas.PAIRS_SCHEMA``).

Two sources of preference, any number of candidates per instruction:

* ``"pairwise"``: the merged verdicts of pairwise/relative judges. Candidates are ranked by
  Copeland score (wins minus losses over the judged pairs; a tie counts for neither), with the
  net judge weight (weight for minus weight against) and then the lower index breaking ranking
  ties. ``"best-vs-worst"`` pairs the top with the bottom candidate, and only when the top ranks
  strictly above the bottom *and* the judges' direct verdict on those two agrees (so a cycle
  A>B>C>A yields no pair). ``"all-pairs"`` emits every decided pair. Ties never make a pair.
  ``margin`` is the weighted vote margin: (weight for winner - weight for loser) / voting weight.
* ``"scores"``: the merged scores of absolute judges. ``margin`` is the score difference;
  a pair needs margin > 0 and margin >= ``min_margin``. ``"best-vs-worst"`` takes the highest
  and the lowest score (equal scores: smaller spread, then lower index, first); ``"all-pairs"``
  every ordered pair with enough margin. ``agreement`` is the share of the weight of judges that
  scored both candidates which ranked chosen strictly above rejected.
* ``"auto"``: per row, ``"pairwise"`` when the row has any pairwise consensus, else ``"scores"``.

Filters applied to every source: ``min_agreement``; ``policy.unanimous_only`` (every voting judge
backs the pair); ``max_length_ratio`` (length-bias control: drop a pair whose chosen response
is more than this many times longer, in characters, than the rejected one, because judges
are known to favour longer answers and DPO learns that bias readily). ``min_margin`` applies to
score pairs only, since pairwise margins are on another scale.

Provenance: ``judges`` (the judges that voted), ``judge_models``, ``template_hashes``
and ``feedback`` ("judge: text" per voting judge) come from the consensus' per-judge evidence.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from judgeflow.consensus import Consensus
from judgeflow.schemas import PAIRS_SCHEMA

Source = Literal["pairwise", "scores", "auto"]
Strategy = Literal["best-vs-worst", "all-pairs"]

_PICK_KEYS = ["row_id", "chosen_index", "rejected_index"]


def _provenance(voted: pl.Expr) -> list[pl.Expr]:
    """Aggregations over the per-judge evidence of one pair (one row per judge, name order).

    Plain list aggregations only: de-duplicating, sorting and joining strings inside millions of
    tiny groups costs several times more than doing it on the list column afterwards
    (``_finish_provenance``).
    """
    return [
        pl.col("judge").filter(voted).alias("judges"),
        pl.col("judge_model").filter(voted).drop_nulls().alias("judge_models"),
        pl.col("template_hash").filter(voted).drop_nulls().alias("template_hashes"),
        pl.col("_feedback").filter(voted).drop_nulls().alias("feedback"),
    ]


def _finish_provenance(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Sorted distinct models and template hashes; feedback texts joined into one."""
    return frame.with_columns(
        pl.col("judge_models").list.unique().list.sort(),
        pl.col("template_hashes").list.unique().list.sort(),
        pl.col("feedback").list.join("\n\n").replace("", None),
    )


def _judge_order(frame: pl.DataFrame) -> pl.Expr:
    """Sort key putting judges in name order, as integers (few judges, many rows)."""
    names = sorted(frame.get_column("judge").unique().drop_nulls().to_list())
    return pl.col("judge").replace_strict(
        {name: i for i, name in enumerate(names)}, default=len(names), return_dtype=pl.UInt32
    )


def _pairwise_picks(consensus: Consensus, strategy: Strategy) -> pl.LazyFrame:
    """(row_id, chosen_index, rejected_index, margin, agreement, unanimous, provenance...)."""
    pw = consensus.pairwise.lazy().filter(pl.col("outcome").is_in(["win", "tie"]))
    decided = pw.filter(pl.col("outcome") == "win")
    if strategy == "best-vs-worst":
        point = pl.when(pl.col("verdict") == "A").then(1).when(pl.col("verdict") == "B").then(-1).otherwise(0)
        sides = pl.concat(
            [
                pw.select(
                    "row_id", pl.col("candidate_a").alias("cand"), point.alias("points"),
                    (pl.col("weight_a") - pl.col("weight_b")).alias("net"),
                ),
                pw.select(
                    "row_id", pl.col("candidate_b").alias("cand"), (-point).alias("points"),
                    (pl.col("weight_b") - pl.col("weight_a")).alias("net"),
                ),
            ]
        )
        standings = sides.group_by("row_id", "cand").agg(
            pl.col("points").sum().alias("copeland"), pl.col("net").sum()
        )
        order = ["copeland", "net", "cand"]
        ends = standings.group_by("row_id").agg(
            pl.col("cand").sort_by(order, descending=[True, True, False]).first().alias("best"),
            pl.col("copeland").sort_by(order, descending=[True, True, False]).first().alias("best_cp"),
            pl.col("cand").sort_by(order, descending=[False, False, False]).first().alias("worst"),
            pl.col("copeland").sort_by(order, descending=[False, False, False]).first().alias("worst_cp"),
        ).filter(pl.col("best_cp") > pl.col("worst_cp"))
        decided = decided.join(
            ends.select("row_id", pl.col("best").alias("winner"), pl.col("worst").alias("loser")),
            on=["row_id", "winner", "loser"],
            how="semi",
        )
    total = pl.col("weight_a") + pl.col("weight_b") + pl.col("weight_tie")
    for_winner = pl.when(pl.col("verdict") == "A").then(pl.col("weight_a")).otherwise(pl.col("weight_b"))
    for_loser = pl.when(pl.col("verdict") == "A").then(pl.col("weight_b")).otherwise(pl.col("weight_a"))
    picks = decided.select(
        "row_id",
        pl.col("winner").alias("chosen_index"),
        pl.col("loser").alias("rejected_index"),
        pl.when(total > 0).then((for_winner - for_loser) / total).alias("margin"),
        "agreement",
        "unanimous",
        "by_judge",
    )
    evidence = (
        picks.select(*_PICK_KEYS, "by_judge")
        .explode("by_judge")
        .unnest("by_judge")
        .with_columns(
            _feedback=pl.concat_str([pl.col("judge"), pl.lit(": "), pl.col("feedback")])
        )
        .group_by(_PICK_KEYS)  # by_judge lists are already in name order
        .agg(_provenance(pl.col("verdict").is_not_null()))
        .pipe(_finish_provenance)
    )
    return picks.drop("by_judge").join(evidence, on=_PICK_KEYS, how="left").with_columns(
        pl.lit(None, dtype=pl.Float64).alias("chosen_score"),
        pl.lit(None, dtype=pl.Float64).alias("rejected_score"),
    )


def _score_picks(consensus: Consensus, strategy: Strategy, min_margin: float) -> pl.LazyFrame:
    """Pairs from merged scores, with per-judge agreement on the pair's order."""
    sc = consensus.scores.lazy().filter(pl.col("score").is_not_null()).select(
        "row_id", "candidate", "score", "score_std"
    )
    if strategy == "all-pairs":
        picks = sc.join(sc, on="row_id", suffix="_r").select(
            "row_id",
            pl.col("candidate").alias("chosen_index"),
            pl.col("candidate_r").alias("rejected_index"),
            pl.col("score").alias("chosen_score"),
            pl.col("score_r").alias("rejected_score"),
        )
    else:
        best = ["score", "score_std", "candidate"]
        picks = sc.group_by("row_id").agg(
            pl.col("candidate").sort_by(best, descending=[True, False, False]).first().alias("chosen_index"),
            pl.col("candidate").sort_by(best, descending=[False, False, False]).first().alias("rejected_index"),
            pl.col("score").max().alias("chosen_score"),
            pl.col("score").min().alias("rejected_score"),
        )
    margin = pl.col("chosen_score") - pl.col("rejected_score")
    # materialised once: three branches below read it, and a shared lazy input is re-run per branch
    picks = (
        picks.with_columns(margin.alias("margin"))
        .filter((pl.col("margin") > 0) & (pl.col("margin") >= min_margin))
        .collect()
        .lazy()
    )
    js = consensus.judge_scores.lazy().select(
        "row_id", "candidate", "judge", "score", "weight", "feedback", "judge_model", "template_hash"
    )
    keys = [*_PICK_KEYS, "judge"]
    on_chosen = picks.select(_PICK_KEYS).join(
        js, left_on=["row_id", "chosen_index"], right_on=["row_id", "candidate"]
    )
    on_rejected = picks.select(_PICK_KEYS).join(
        js, left_on=["row_id", "rejected_index"], right_on=["row_id", "candidate"]
    )
    both = on_chosen.join(on_rejected, on=keys, how="full", coalesce=True, suffix="_r")
    s_c, s_r, w = pl.col("score"), pl.col("score_r"), pl.col("weight").fill_null(pl.col("weight_r"))
    rated_both = s_c.is_not_null() & s_r.is_not_null()
    voted = pl.col("_voted")
    evidence = (
        both.with_columns(
            pl.col("judge_model").fill_null(pl.col("judge_model_r")),
            pl.col("template_hash").fill_null(pl.col("template_hash_r")),
            # row-wise first, so the group step only sums and tests booleans
            _voted=s_c.is_not_null() | s_r.is_not_null(),
            _both=rated_both,
            _w_both=pl.when(rated_both).then(w).otherwise(0.0),
            _w_agree=pl.when(rated_both & (s_c > s_r)).then(w).otherwise(0.0),
            _disagree=rated_both & (s_c <= s_r),
            _feedback=pl.concat_str(
                [
                    pl.concat_str([pl.col("judge"), pl.lit(" [chosen]: "), pl.col("feedback")]),
                    pl.concat_str([pl.col("judge"), pl.lit(" [rejected]: "), pl.col("feedback_r")]),
                ],
                separator="\n",
                ignore_nulls=True,
            ).replace("", None),
        )
        .sort(_judge_order(consensus.judge_scores))  # groups keep it: provenance lists by name
        .group_by(_PICK_KEYS)
        .agg(
            pl.when(pl.col("_w_both").sum() > 0)
            .then(pl.col("_w_agree").sum() / pl.col("_w_both").sum())
            .alias("agreement"),
            # unanimity needs at least one judge that saw both candidates
            (pl.col("_both").any() & ~pl.col("_disagree").any()).alias("unanimous"),
            *_provenance(voted),
        )
        .pipe(_finish_provenance)
    )
    return picks.select(*_PICK_KEYS, "margin", "chosen_score", "rejected_score").join(
        evidence, on=_PICK_KEYS, how="left"
    )


def build_pairs(
    rows: pl.DataFrame | pl.LazyFrame,
    consensus: Consensus,
    *,
    source: Source = "auto",
    strategy: Strategy = "best-vs-worst",
    min_margin: float = 0.0,
    min_agreement: float = 0.0,
    max_length_ratio: float | None = None,
    run_id: str | None = None,
) -> pl.DataFrame:
    """Preference pairs with exactly ``PAIRS_SCHEMA`` (see the module docstring for the rules).

    ``rows`` has ``ROWS_SCHEMA`` (``instruction`` becomes ``prompt``; the candidate texts and
    models are looked up by index). Pairs whose indices fall outside a row's responses are dropped.
    """
    frames: list[pl.LazyFrame] = []
    pairwise_rows = consensus.pairwise.lazy().select("row_id").unique()
    if source in ("pairwise", "auto") and not consensus.pairwise.is_empty():
        frames.append(_pairwise_picks(consensus, strategy))
    if source in ("scores", "auto") and not consensus.scores.is_empty():
        picks = _score_picks(consensus, strategy, min_margin)
        if source == "auto":
            picks = picks.join(pairwise_rows, on="row_id", how="anti")
        frames.append(picks)
    if not frames:
        return pl.DataFrame(schema=PAIRS_SCHEMA)

    columns = [
        *_PICK_KEYS, "chosen_score", "rejected_score", "margin", "agreement", "unanimous",
        "judges", "judge_models", "template_hashes", "feedback",
    ]
    picks = pl.concat([f.select(columns) for f in frames], how="vertical_relaxed")
    if min_agreement > 0:
        picks = picks.filter(pl.col("agreement") >= min_agreement)
    if consensus.policy.unanimous_only:
        picks = picks.filter(pl.col("unanimous"))

    # Scores of pairwise pairs come from absolute judges when the run had some.
    merged_scores = consensus.scores.lazy().select("row_id", "candidate", "score")
    picks = (
        picks.join(
            merged_scores.rename({"candidate": "chosen_index", "score": "_cs"}),
            on=["row_id", "chosen_index"], how="left",
        )
        .join(
            merged_scores.rename({"candidate": "rejected_index", "score": "_rs"}),
            on=["row_id", "rejected_index"], how="left",
        )
        .with_columns(
            pl.col("chosen_score").fill_null(pl.col("_cs")),
            pl.col("rejected_score").fill_null(pl.col("_rs")),
        )
    )

    texts = rows.lazy().select("row_id", "instruction", "responses", "models")
    out = picks.join(texts, on="row_id", how="inner").with_columns(
        pl.col("instruction").alias("prompt"),
        pl.col("responses").list.get(pl.col("chosen_index"), null_on_oob=True).alias("chosen"),
        pl.col("responses").list.get(pl.col("rejected_index"), null_on_oob=True).alias("rejected"),
        pl.col("models").list.get(pl.col("chosen_index"), null_on_oob=True).alias("chosen_model"),
        pl.col("models").list.get(pl.col("rejected_index"), null_on_oob=True).alias("rejected_model"),
        pl.lit(run_id, dtype=pl.String).alias("run_id"),
    ).filter(pl.col("chosen").is_not_null() & pl.col("rejected").is_not_null())
    if max_length_ratio is not None:
        out = out.filter(
            pl.col("chosen").str.len_chars() <= max_length_ratio * pl.col("rejected").str.len_chars()
        )
    return (
        out.select(list(PAIRS_SCHEMA))
        .cast(PAIRS_SCHEMA)  # type: ignore[arg-type]
        .sort("row_id", "chosen_index", "rejected_index")
        .collect()
    )
