"""The report page: self-contained HTML with the plots, readable numbers, no network needed."""

from __future__ import annotations

import polars as pl

from judgeflow.report import render_report, win_rates


def test_report_has_every_plot_and_no_external_resources() -> None:
    judgments = pl.DataFrame({"judge": ["a", "a", "b"], "kind": ["absolute"] * 3, "score": [1.0, 4.0, 5.0]})
    pairs = pl.DataFrame({"chosen_model": ["x", "x", "y"], "rejected_model": ["y", "y", "x"]})
    agreement = pl.DataFrame({"judge_a": ["a"], "judge_b": ["b"], "metric": ["kappa_verdict"], "value": [0.5]})
    page = render_report(title="t", summary={"rows_in": 3, "alpha": 0.684991674927719},
                         judgments=judgments, pairs=pairs, agreement=agreement)
    assert page.count("<svg") == 3  # histograms, heatmap, win rates
    # nothing fetched: no scripts, stylesheets or images from elsewhere (SVG namespace URIs are names)
    assert "<script" not in page and "<link" not in page and 'src="http' not in page and "@import" not in page
    assert "0.685" in page and "0.684991674927719" not in page
    rates = win_rates(pairs)
    assert rates.row(0, named=True) == {"model": "x", "wins": 2, "losses": 1, "win_rate": 2 / 3}
