"""``judgeflow.judge`` from a notebook stays light (issue 15 item 6): statistics, plotting and S3
libraries, YAML, regex and jinja2 are imported only by the code that uses them, never by a plain
``judge``.

A module check in a fresh interpreter, not a timing: ``benchmarks/import_cost.py`` measures
the time and memory this buys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from judgeflow.simulator import Simulator

HEAVY = ("scipy", "sklearn", "krippendorff", "matplotlib", "boto3", "botocore")
# Libraries only some judges or commands need: YAML (config and registry files), regex (a custom
# score_regex), jinja2 (a custom template). A judge that uses none of them loads none.
ON_USE = ("yaml", "regex", "jinja2")

SCRIPT = """
import json, sys
import judgeflow

rows = [{"instruction": f"Name prime {i}.", "responses": ["7", "nine"]} for i in range(5)]
judge = {"name": "light", "provider": "openai-compatible", "base_url": sys.argv[1],
         "model": "prometheus-7b-v2.0", "api_key_env": "JF_LIGHT_KEY"}
result = judgeflow.judge(rows, judges=[judge])
frame = getattr(result, "frame", result)
print(json.dumps({"ok": int((frame["status"] == "ok").sum()),
                  "loaded": sorted(m for m in sys.argv[2:] if m in sys.modules)}))
"""


@pytest.mark.timeout(120)
def test_judge_loads_no_statistics_plotting_or_s3_library(simulator: Simulator, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, simulator.openai_base_url, *HEAVY, *ON_USE],
        capture_output=True, text=True, timeout=100, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "JF_LIGHT_KEY": "sk-light-0123456789", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok"] == 10  # the judge really ran: 5 rows x 2 candidates
    assert out["loaded"] == []


@pytest.mark.timeout(180)
def test_the_import_cost_benchmark_runs(tmp_path: Path) -> None:
    """``benchmarks/import_cost.py`` at a tiny size: well-formed figures, the work really done."""
    from benchmarks import import_cost

    out = tmp_path / "import_cost.json"
    assert import_cost.main(["--repeats", "1", "--rows", "5", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["requests"] == 10 and data["ok"] == 10 and data["heavy_loaded"] == []
    assert 0 < data["import_s"] <= data["total_s"] and data["best_total_s"] <= data["total_s"]
    assert data["python_rss_mb"] < data["peak_rss_mb"] and 0 < data["peak_private_mb"] <= data["peak_rss_mb"]
