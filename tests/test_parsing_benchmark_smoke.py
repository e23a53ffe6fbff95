"""``benchmarks.parsing_hostile`` runs and reports every parser and shape (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import parsing_hostile


@pytest.mark.timeout(300)
def test_parsing_hostile_quick_reports_every_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "parsing.json"
    assert parsing_hostile.main(["--quick", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    shapes = (len(parsing_hostile.ABSOLUTE_SHAPES) + len(parsing_hostile.RELATIVE_SHAPES)
              + len(parsing_hostile.PAIRWISE_SHAPES) + len(parsing_hostile.CUSTOM_SHAPES))
    assert len(result["rows"]) == shapes
    assert all(len(row["ms"]) == len(result["sizes"]) == 4 for row in result["rows"])
    assert {row["parser"] for row in result["rows"]} >= {"absolute", "relative", "pairwise-json"}
    assert len(result["old"]["absolute_score_spaces_ms"]) == 1 and isinstance(result["target_met"], bool)
    printed = capsys.readouterr().out
    assert "| pairwise-json | fenced flip after prose |" in printed and "old forward pattern" in printed
