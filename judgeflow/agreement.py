"""How much the judges agree with each other and with themselves, computed at build time.

A preference dataset is only as good as its labels; inter-judge agreement is the cheapest
evidence of label quality, and position consistency (same verdict with the candidates swapped)
is the cheapest evidence of a judge's own reliability. The statistics come from well-kept
libraries, not hand-written formulas:

* Cohen's kappa per judge pair (``sklearn.metrics.cohen_kappa_score``): on the combined
  per-pair verdicts ("A"/"B"/"tie") for pairwise judges, on scores for absolute judges (with an
  optional "linear"/"quadratic" weighting for ordinal scores);
* Krippendorff's alpha across all judges of a kind (``krippendorff.alpha``): nominal for
  verdicts, ordinal for scores; it copes with missing ratings (abstentions);
* Spearman and Pearson correlation of scores per judge pair (``scipy.stats``);
* position-consistency rate per pairwise judge: among pairs it judged in both orders, the share
  whose two verdicts agreed.

Undefined values (one judge, no shared items, constant ratings) are ``None``, never NaN, so the
report serialises to strict JSON.

sklearn, scipy and krippendorff are imported inside the functions that use them: together they
take over a second and ~90 MB to import, and ``judgeflow.judge`` from a notebook needs none.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from judgeflow.consensus import Consensus, ConsensusPolicy, judge_scores, judge_verdicts

KappaWeights = Literal["linear", "quadratic"] | None

HEATMAP_SCHEMA: dict[str, pl.DataType] = {
    "judge_a": pl.String(),
    "judge_b": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
    "n": pl.Int64(),
}

_VERDICT_CODES = {"A": 0.0, "B": 1.0, "tie": 2.0}


class PairStatistic(BaseModel):
    """One statistic for one pair of judges over the items both rated."""

    model_config = ConfigDict(extra="forbid")

    judge_a: str
    judge_b: str
    metric: str  # kappa_verdict | kappa_score | spearman | pearson
    value: float | None
    n: int  # items both judges rated


class PositionConsistency(BaseModel):
    """How often one pairwise judge kept its verdict when the candidates were swapped."""

    model_config = ConfigDict(extra="forbid")

    judge: str
    pairs_both_orders: int
    consistent: int
    rate: float | None


class AgreementReport(BaseModel):
    """All agreement statistics of one build; ``model_dump_json()`` is strict JSON."""

    model_config = ConfigDict(extra="forbid")

    pairwise_judges: list[str]
    absolute_judges: list[str]
    pairs: list[PairStatistic]
    alpha_verdicts: float | None  # Krippendorff's alpha, nominal, across pairwise judges
    alpha_scores: float | None  # Krippendorff's alpha, ordinal, across absolute judges
    position_consistency: list[PositionConsistency]
    kappa_weights: str | None

    def heatmap_frame(self) -> pl.DataFrame:
        """Long frame (judge_a, judge_b, metric, value, n), both orientations, for a heatmap.

        The diagonal is left out: a judge's agreement with itself says nothing.
        """
        rows = [
            (s.judge_a, s.judge_b, s.metric, s.value, s.n) for s in self.pairs
        ] + [(s.judge_b, s.judge_a, s.metric, s.value, s.n) for s in self.pairs]
        return pl.DataFrame(rows, schema=HEATMAP_SCHEMA, orient="row").sort(
            "metric", "judge_a", "judge_b"
        )


def _finite(value: float | np.floating | None) -> float | None:
    """NaN/inf -> None: undefined statistics must not leak into JSON as NaN."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _kappa(a: np.ndarray, b: np.ndarray, weights: KappaWeights, labels: np.ndarray | None) -> float | None:
    """Cohen's kappa of two label arrays; ``labels`` (sorted) fixes the scale for weighting.

    Labels go to sklearn as their positions 0..k-1 (what its weighted kappa uses anyway): given
    anything else, ``confusion_matrix`` maps every element through a Python dict, which is most
    of the cost at a few hundred thousand items.
    """
    if len(a) == 0:
        return None
    scale = np.unique(np.concatenate([a, b])) if labels is None else labels
    if np.unique(np.concatenate([a, b])).size < 2:
        return None  # one label only: chance agreement is 1, kappa is 0/0
    from sklearn.metrics import cohen_kappa_score  # heavy: only when agreement is computed

    positions = np.arange(len(scale))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = cohen_kappa_score(
            np.searchsorted(scale, a), np.searchsorted(scale, b), weights=weights, labels=positions
        )
    return _finite(value)


def _correlation(kind: Literal["spearman", "pearson"], a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return None  # correlation of a constant is undefined
    from scipy import stats  # heavy: only when agreement is computed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.spearmanr(a, b) if kind == "spearman" else stats.pearsonr(a, b)
    return _finite(result.statistic)


def _alpha(matrix: np.ndarray, level: Literal["nominal", "ordinal"]) -> float | None:
    if matrix.shape[0] < 2 or matrix.shape[1] == 0:
        return None
    import krippendorff  # heavy (scipy): only when agreement is computed

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return _finite(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))
    except ValueError:  # one value in the domain, or no item rated by two judges
        return None


def implied_verdicts(scores: pl.DataFrame) -> pl.DataFrame:
    """Per absolute judge, the pairwise verdict its scores imply for each candidate pair of a row.

    (row_id, candidate_a < candidate_b, judge, verdict): "A" when candidate_a scored higher,
    "B" when lower, "tie" when equal; pairs with an abstained score are left out.
    """
    rated = scores.filter(pl.col("score").is_not_null()).select("row_id", "judge", "candidate", "score")
    pairs = rated.join(rated, on=["row_id", "judge"], suffix="_b").filter(pl.col("candidate") < pl.col("candidate_b"))
    return pairs.select(
        "row_id",
        pl.col("candidate").cast(pl.Int32).alias("candidate_a"),
        pl.col("candidate_b").cast(pl.Int32),
        "judge",
        pl.when(pl.col("score") > pl.col("score_b")).then(pl.lit("A"))
        .when(pl.col("score") < pl.col("score_b")).then(pl.lit("B"))
        .otherwise(pl.lit("tie")).alias("verdict"),
    )


def _matrix(long: pl.DataFrame, keys: list[str], value: pl.Expr, judges: list[str]) -> np.ndarray:
    """Items x judges matrix of floats, NaN where a judge abstained or did not rate the item."""
    if not judges:
        return np.empty((0, 0))
    wide = (
        long.select(*keys, "judge", value.alias("_v"))
        .drop_nulls("_v")
        .pivot(on="judge", on_columns=judges, index=keys, values="_v", aggregate_function="first")
    )
    return wide.select(judges).to_numpy().astype(float)


def _score_labels(matrix: np.ndarray) -> np.ndarray | None:
    """Label set for weighted kappa: every integer step for integer scales, so a score never
    seen (e.g. no judge gave a 3) still counts as a step between 2 and 4."""
    values = matrix[~np.isnan(matrix)]
    if values.size == 0:
        return None
    if np.all(values == np.round(values)):
        return np.arange(values.min(), values.max() + 1)
    return np.unique(values)


def compute_agreement(
    source: Consensus | pl.DataFrame | pl.LazyFrame,
    *,
    kappa_weights: KappaWeights = None,
    policy: ConsensusPolicy | None = None,
) -> AgreementReport:
    """Agreement statistics from a ``Consensus`` (reuses its per-judge frames) or judgments.

    ``kappa_weights`` applies to score kappas only ("quadratic" is the usual choice for ordinal
    1-5 scales; verdicts are nominal and always unweighted).
    """
    if isinstance(source, Consensus):
        verdicts, scores = source.verdicts, source.judge_scores
    else:
        policy = policy or ConsensusPolicy()
        frame = source.collect() if isinstance(source, pl.LazyFrame) else source
        verdicts, scores = judge_verdicts(frame, policy), judge_scores(frame, policy)

    pairwise_judges = sorted(verdicts.get_column("judge").unique().to_list())
    absolute_judges = sorted(scores.get_column("judge").unique().to_list())
    pairs: list[PairStatistic] = []

    v_matrix = _matrix(
        verdicts,
        ["row_id", "candidate_a", "candidate_b"],
        pl.col("verdict").replace_strict(_VERDICT_CODES, default=None, return_dtype=pl.Float64),
        pairwise_judges,
    )
    for (i, a), (j, b) in itertools.combinations(enumerate(pairwise_judges), 2):
        both = ~np.isnan(v_matrix[:, i]) & ~np.isnan(v_matrix[:, j])
        x, y = v_matrix[both, i], v_matrix[both, j]
        pairs.append(PairStatistic(judge_a=a, judge_b=b, metric="kappa_verdict", value=_kappa(x, y, None, None), n=int(both.sum())))

    s_matrix = _matrix(scores, ["row_id", "candidate"], pl.col("score"), absolute_judges)
    labels = _score_labels(s_matrix) if kappa_weights else None
    for (i, a), (j, b) in itertools.combinations(enumerate(absolute_judges), 2):
        both = ~np.isnan(s_matrix[:, i]) & ~np.isnan(s_matrix[:, j])
        x, y = s_matrix[both, i], s_matrix[both, j]
        n = int(both.sum())
        pairs.append(PairStatistic(judge_a=a, judge_b=b, metric="kappa_score", value=_kappa(x, y, kappa_weights, labels), n=n))
        pairs.append(PairStatistic(judge_a=a, judge_b=b, metric="spearman", value=_correlation("spearman", x, y), n=n))
        pairs.append(PairStatistic(judge_a=a, judge_b=b, metric="pearson", value=_correlation("pearson", x, y), n=n))

    # Absolute judges against pairwise ones: a score judge "prefers" the candidate it scored
    # higher (equal scores: tie), so every judge of a build can be compared on the same pairs.
    implied = implied_verdicts(scores)
    if pairwise_judges and implied.height:
        judges = pairwise_judges + absolute_judges
        mixed = pl.concat([verdicts.select(implied.columns), implied], how="vertical_relaxed")
        m_matrix = _matrix(
            mixed, ["row_id", "candidate_a", "candidate_b"],
            pl.col("verdict").replace_strict(_VERDICT_CODES, default=None, return_dtype=pl.Float64), judges,
        )
        for i, a in enumerate(pairwise_judges):
            for j, b in enumerate(absolute_judges, start=len(pairwise_judges)):
                both = ~np.isnan(m_matrix[:, i]) & ~np.isnan(m_matrix[:, j])
                pairs.append(PairStatistic(
                    judge_a=a, judge_b=b, metric="kappa_verdict",
                    value=_kappa(m_matrix[both, i], m_matrix[both, j], None, None), n=int(both.sum()),
                ))

    consistency = (
        verdicts.filter(pl.col("both_orders"))
        .group_by("judge")
        .agg(pl.len().alias("n"), (~pl.col("position_inconsistent")).sum().alias("consistent"))
    )
    counts = {r["judge"]: (r["n"], r["consistent"]) for r in consistency.iter_rows(named=True)}
    position = [
        PositionConsistency(
            judge=judge,
            pairs_both_orders=counts.get(judge, (0, 0))[0],
            consistent=counts.get(judge, (0, 0))[1],
            rate=(counts[judge][1] / counts[judge][0]) if counts.get(judge, (0, 0))[0] else None,
        )
        for judge in pairwise_judges
    ]
    return AgreementReport(
        pairwise_judges=pairwise_judges,
        absolute_judges=absolute_judges,
        pairs=pairs,
        alpha_verdicts=_alpha(v_matrix.T, "nominal"),
        alpha_scores=_alpha(s_matrix.T, "ordinal"),
        position_consistency=position,
        kappa_weights=kappa_weights,
    )
