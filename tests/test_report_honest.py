"""The report says when its verdicts come from the simulator, and every heatmap number is readable."""

from __future__ import annotations

import polars as pl
import pytest

from judgeflow.prompts.render import compile_spec
from judgeflow.report import heatmap_figure, render_report, simulated_replies
from judgeflow.simulator.judge import answer
from judgeflow.specs import JudgeSpec


def _frames(raw: list[str]) -> dict[str, pl.DataFrame]:
    n = len(raw)
    return {
        "judgments": pl.DataFrame({
            "judge": ["a"] * n, "kind": ["absolute"] * n, "score": [3.0] * n, "status": ["ok"] * n, "raw_output": raw,
        }),
        "pairs": pl.DataFrame({"chosen_model": ["x"], "rejected_model": ["y"]}),
        "agreement": pl.DataFrame(schema={"judge_a": pl.String, "judge_b": pl.String, "metric": pl.String,
                                          "value": pl.Float64}),
    }


def _simulator_replies() -> list[str]:
    out = []
    for kind, template in (("absolute", "prometheus"), ("relative", "prometheus"), ("pairwise", "pairwise-json")):
        prompt = compile_spec(JudgeSpec(name="j", kind=kind, template=template)).render(
            "What is 2+2?", "It is 4.", None if kind == "absolute" else "Five.", None
        )
        out += [answer(prompt.user), answer(prompt.user, json_mode=True)]
    return out


def test_simulated_verdicts_are_flagged_and_the_ranking_called_meaningless() -> None:
    replies = _simulator_replies()
    assert simulated_replies(_frames(replies)["judgments"]) == (len(replies), len(replies))
    page = render_report(title="t", summary={}, **_frames(replies))
    assert "Simulated verdicts" in page and "not a model" in page
    assert "ranking is meaningless" in page


def test_real_replies_are_not_flagged() -> None:
    real = [
        "The response is accurate and concise; it addresses the question directly. [RESULT] 4",
        '{"reasoning": "Response A is correct, B is not.", "preferred": "A"}',
    ]
    assert simulated_replies(_frames(real)["judgments"]) == (0, 2)
    page = render_report(title="t", summary={}, **_frames(real))
    assert "Simulated verdicts" not in page and "meaningless" not in page


def test_a_mix_says_how_many() -> None:
    frames = _frames(_simulator_replies()[:2] + ["A real model's feedback. [RESULT] 2"])
    assert "2 of 3 answered judgments" in render_report(title="t", summary={}, **frames)


def _luminance(rgb: tuple[float, ...]) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("values", [[-1.0, -0.6, -0.2, 0.0], [0.2, 0.6, 0.9, 1.0]])
def test_every_heatmap_label_reads_on_its_cell(values: list[float]) -> None:
    from matplotlib.colors import to_rgba

    judges = ["j0", "j1", "j2", "j3"]
    grid = [[values[(i + j) % 4] for j in range(4)] for i in range(4)]
    fig = heatmap_figure(grid, judges, "kappa")
    ax = fig.axes[0]
    image = ax.images[0]
    assert len(ax.texts) == 16
    for text in ax.texts:
        j, i = (round(v) for v in text.get_position())
        cell = image.cmap(image.norm(grid[i][j]))
        mine = _contrast(to_rgba(text.get_color()), cell)
        other = _contrast(to_rgba("white" if text.get_color() == "black" else "black"), cell)
        assert mine >= other, (grid[i][j], text.get_color())
        assert mine >= 4.5, (grid[i][j], text.get_color(), mine)  # WCAG AA for normal text
