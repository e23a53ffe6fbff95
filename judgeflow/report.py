"""The build report: one self-contained HTML page with the plots a reviewer looks at.

Plots are rendered with matplotlib to inline SVG, so the page opens in any browser with no
network (no CDN scripts) and can be published beside the dataset. The page holds no time
(generation times live in the manifest), so identical inputs give a byte-identical report.
Inputs are the frames the build already has; nothing here re-reads data or talks to a service.

Two things keep the page honest: when the verdicts come from judgeflow's provider simulator (its
deterministic judge: a hash of the texts, not a model; recognised from the reply texts
themselves, so a copied demo config pointed at real endpoints is never flagged) the page says so
at the top and beside the ranking; and every number on the agreement heatmaps is drawn in the
colour that reads on its cell (white on dark, black on light).
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from typing import Any

import polars as pl


#: Summary entries that say what one run did rather than what the dataset is: the manifest
#: records them (with the times); the report leaves them out, so a rebuild of the same inputs,
#: answered from the judgment store, gives a byte-identical report.
RUN_HISTORY_KEYS = frozenset({"requests_sent", "requests_cached"})


def dataset_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` without ``RUN_HISTORY_KEYS``: the part of it the report shows."""
    return {k: v for k, v in summary.items() if k not in RUN_HISTORY_KEYS}


def simulated_replies(judgments: pl.DataFrame) -> tuple[int, int]:
    """(answered judgments whose reply is the simulator's, answered judgments).

    The simulator writes its replies from fixed sentences (``judgeflow.simulator.judge``); a
    real model's reply matching them whole is not a practical possibility.
    """
    if "raw_output" not in judgments.columns or judgments.is_empty():
        return 0, 0
    from judgeflow.simulator.judge import REPLY_PATTERN

    answered = judgments.filter(pl.col("raw_output").is_not_null() & (pl.col("status") == "ok"))
    simulated = answered.select(pl.col("raw_output").str.contains(REPLY_PATTERN).sum()).item()
    return int(simulated or 0), answered.height


def _simulator_notice(judgments: pl.DataFrame) -> tuple[str, str]:
    """(a banner for the top of the page, a note for the ranking); empty without simulated verdicts."""
    simulated, answered = simulated_replies(judgments)
    if not simulated:
        return "", ""
    share = "All" if simulated == answered else f"{simulated} of {answered}"
    banner = (
        '<p class="notice"><strong>Simulated verdicts.</strong> '
        f"{share} answered judgments in this build come from judgeflow's provider simulator: a "
        "deterministic hash of the texts, not a model. Scores, agreement and the model ranking "
        "below say nothing about the responses' quality.</p>"
    )
    note = '<p class="notice">This ranking is meaningless: the verdicts come from the simulator.</p>'
    return banner, note


def win_rates(pairs: pl.DataFrame) -> pl.DataFrame:
    """Win rate per candidate model over the published pairs (model, wins, losses, win_rate)."""
    if pairs.is_empty():
        return pl.DataFrame(schema={"model": pl.String, "wins": pl.UInt32, "losses": pl.UInt32, "win_rate": pl.Float64})
    wins = pairs.select(pl.col("chosen_model").fill_null("unknown").alias("model")).group_by("model").len("wins")
    losses = pairs.select(pl.col("rejected_model").fill_null("unknown").alias("model")).group_by("model").len("losses")
    return (
        wins.join(losses, on="model", how="full", coalesce=True)
        .with_columns(pl.col("wins", "losses").fill_null(0))
        .with_columns((pl.col("wins") / (pl.col("wins") + pl.col("losses"))).alias("win_rate"))
        .sort("win_rate", "model", descending=[True, False])
    )


def _svg(fig: Any) -> str:
    """The figure as inline SVG, byte-identical for identical data: no creation date in the
    metadata and element ids hashed with a fixed salt (matplotlib salts them with a random
    UUID by default). The report is published beside the dataset, and a rebuild of the same
    inputs must give the same bytes; times belong to the manifest only."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "judgeflow-report"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buffer.getvalue()
    return text[text.find("<svg") :]


def _score_histograms(judgments: pl.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = judgments.filter((pl.col("kind") == "absolute") & pl.col("score").is_not_null())
    judges = scored.get_column("judge").unique().sort().to_list()
    if not judges:
        return "<p>No absolute scores in this build.</p>"
    fig, axes = plt.subplots(1, len(judges), figsize=(3.6 * len(judges), 2.8), squeeze=False)
    for ax, judge in zip(axes[0], judges, strict=True):
        counts = (
            scored.filter(pl.col("judge") == judge)
            .group_by(pl.col("score").round(0).cast(pl.Int32).alias("s"))
            .len()
            .sort("s")
        )
        ax.bar(counts["s"].to_list(), counts["len"].to_list(), color="#4c72b0")
        ax.set_title(judge, fontsize=10)
        ax.set_xlabel("score")
        ax.set_xticks([1, 2, 3, 4, 5])
    axes[0][0].set_ylabel("judgments")
    return _svg(fig)


def _agreement_heatmap(agreement: pl.DataFrame, metric: str) -> str:
    cells = agreement.filter((pl.col("metric") == metric) & pl.col("value").is_not_null())
    if cells.is_empty():
        return f"<p>No {html.escape(metric)} values (needs two or more judges on shared items).</p>"
    judges = sorted(set(cells["judge_a"].to_list()) | set(cells["judge_b"].to_list()))
    index = {j: i for i, j in enumerate(judges)}
    grid = [[float("nan")] * len(judges) for _ in judges]
    for i in range(len(judges)):
        grid[i][i] = 1.0
    for a, b, v in cells.select("judge_a", "judge_b", "value").iter_rows():
        grid[index[a]][index[b]] = grid[index[b]][index[a]] = v
    return _svg(heatmap_figure(grid, judges, metric))


def label_color(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever contrasts more with a cell of colour ``rgba`` (WCAG luminance)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgba[:3])
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # contrast with black (L + 0.05) / 0.05 against white 1.05 / (L + 0.05): equal at L ~ 0.179
    return "black" if luminance > 0.179 else "white"


def heatmap_figure(grid: list[list[float]], judges: list[str], metric: str) -> Any:
    """The heatmap figure: values -1..1 on a diverging map, each label readable on its cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(judges) + 2, 1.0 * len(judges) + 1.5))
    image = ax.imshow(grid, vmin=-1, vmax=1, cmap="RdBu")
    ax.set_xticks(range(len(judges)), judges, rotation=30, ha="right")
    ax.set_yticks(range(len(judges)), judges)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if value == value:  # not NaN
                color = label_color(image.cmap(image.norm(value)))
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9, color=color)
    ax.set_title(metric)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _win_rate_chart(rates: pl.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if rates.is_empty():
        return "<p>No preference pairs in this build.</p>"
    fig, ax = plt.subplots(figsize=(6, 0.45 * rates.height + 1))
    ax.barh(rates["model"].to_list()[::-1], rates["win_rate"].to_list()[::-1], color="#55a868")
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate in published pairs")
    return _svg(fig)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(data: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>" for k, v in data.items()
    )
    return f"<table>{rows}</table>"


def render_report(
    *,
    title: str,
    summary: Mapping[str, Any],
    judgments: pl.DataFrame,
    pairs: pl.DataFrame,
    agreement: pl.DataFrame,
) -> str:
    """The whole report page as HTML text.

    ``agreement`` is the long frame (judge_a, judge_b, metric, value) from
    ``judgeflow.agreement``; one heatmap is drawn per metric present.
    """
    metrics = agreement.get_column("metric").unique().sort().to_list() if agreement.height else []
    heatmaps = "".join(
        f"<h3>{html.escape(m)}</h3>{_agreement_heatmap(agreement, m)}" for m in metrics
    ) or "<p>No agreement statistics (a single judge, or no shared items).</p>"
    rates = win_rates(pairs)
    banner, ranking_note = _simulator_notice(judgments)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ddd; padding: 4px 10px; text-align: left; }}
th {{ background: #f4f4f4; }}
section {{ margin-bottom: 2rem; }} svg {{ max-width: 100%; height: auto; }}
.notice {{ background: #fff3cd; border: 1px solid #e0b400; padding: 8px 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{banner}
<section><h2>Summary</h2>{_table(summary)}</section>
<section><h2>Score distribution per judge</h2>{_score_histograms(judgments)}</section>
<section><h2>Agreement between judges</h2>{heatmaps}</section>
<section><h2>Win rate by candidate model</h2>{ranking_note}{_win_rate_chart(rates)}
{_table({r["model"]: f'{r["win_rate"]:.1%} ({r["wins"]} won, {r["losses"]} lost)' for r in rates.iter_rows(named=True)})}
</section>
</body></html>
"""
