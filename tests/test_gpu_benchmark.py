"""The PairRM benchmark's CPU smoke mode runs and agrees with llm-blender's compare."""

from __future__ import annotations

import pytest

pytest.importorskip("llm_blender")

pytestmark = pytest.mark.pairrm


def test_pairrm_benchmark_tiny_smoke(tmp_path) -> None:
    from benchmarks.pairrm_gpu import main

    result = main(["--tiny", "--rows", "2", "--candidates", "2", "--json", str(tmp_path / "r.json")])
    assert result["pairs"] == 2 and result["forward_passes"] == 4
    assert result["judgeflow"]["pairs_per_s"] > 0 and result["llm_blender_compare"]["pairs_per_s"] > 0
    assert result["llm_blender_compare"]["verdict_agreement"] == 1.0
    assert result["llm_blender_compare"]["max_abs_logit_diff"] < 1e-4
    assert result["device"].startswith("cpu") and (tmp_path / "r.json").is_file()
