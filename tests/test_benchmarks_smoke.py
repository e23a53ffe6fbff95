"""Smoke runs of every benchmark script at tiny sizes: each produces well-formed results.

Real parts only: the simulator over HTTP (in its own process where the script starts one), real
child processes, a real Prefect flow for the orchestration figures. No timing is asserted: the
numbers depend on the machine; what is checked is that every figure exists, has the right type
and sign, that the work was really done (judgments counted, batches collected, task runs read
from the Prefect API), and that the report renders every section with a verdict.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as bench_main
from benchmarks import batch_path, orchestration, peers
from benchmarks.common import bench_rows, machine_info, md_table, median, verdict
from judgeflow.schemas import ROWS_SCHEMA
from judgeflow.simulator import Simulator

pytestmark = pytest.mark.timeout(300)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


# --- helpers ---------------------------------------------------------------------------------


def test_common_helpers() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert verdict(True) == "PASS" and verdict(False) == "MISS" and verdict(None) == "n/a"
    table = md_table(["a", "b"], [[1, 2.5], ["x|y", None]]).splitlines()
    assert table[0] == "| a | b |" and table[2] == "| 1 | 2.5 |" and table[3] == "| x\\|y | - |"
    with pytest.raises(ValueError):
        md_table(["a"], [[1, 2]])
    info = machine_info()
    assert info["nproc"] >= 1 and info["python"].startswith("3.") and "polars" in info["packages"]
    rows = bench_rows(5)
    assert rows.schema == ROWS_SCHEMA and rows.height == 5 and rows["responses"].list.len().to_list() == [1] * 5


# --- benchmark scripts -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from benchmarks import live_judging

    out = tmp_path_factory.mktemp("live") / "live.json"
    assert live_judging.main(["--rows", "60", "--repeats", "1", "--latency-ms", "0", "200",
                              "--concurrency", "16", "--json", str(out)]) == 0
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_live_judging_smoke(live_result: dict[str, Any]) -> None:
    results = live_result["results"]
    assert {(r["client"], r["latency_ms"]) for r in results} == {
        (c, lat) for c in ("judgeflow", "openai-sdk") for lat in (0.0, 200.0)}
    for r in results:
        assert r["ok_min"] == 60
        assert _positive(r["rows_per_s"]) and _positive(r["peak_rss_mb"]) and r["cpu_ms_per_row"] >= 0
    figures = bench_main._live_figures(live_result)
    assert [f[0] for f in figures][0].startswith("judgeflow rows/s, c=64")
    assert figures[0][3] is None  # c=64 was not run at this size: n/a, not a made-up verdict
    assert isinstance(figures[2][3], bool)  # CPU per row was measured
    assert "| judgeflow | 200 ms | 16 |" in bench_main.render_live(live_result)


def test_peers_smoke_without_peer_venvs(tmp_path: Path) -> None:
    missing = peers.Peer("ghost", tmp_path / "no-venv", ("nothing==0",), "import nothing", "none.py")
    assert not peers.installed(missing)
    result = peers.run(40, 8, 0.0, 1, do_setup=False, peers=[])
    (jf,) = result["clients"]
    assert jf["client"] == "judgeflow" and jf["ok_min"] == 40 and _positive(jf["rows_per_s"])
    assert result["ratio_vs_fastest_peer"] is None and result["pass"] is None
    assert "no peer ran" in peers.render(result)


@pytest.mark.skipif(not peers.installed(peers.PEERS["prometheus-eval"]),
                    reason="prometheus-eval venv not set up (python -m benchmarks.peers --setup)")
def test_peers_smoke_with_prometheus_eval() -> None:
    result = peers.run(30, 8, 0.0, 1, do_setup=False, peers=["prometheus-eval"])
    by_name = {c["client"]: c for c in result["clients"]}
    assert by_name["prometheus-eval"]["ok_min"] == 30  # the peer really judged every item
    assert _positive(result["ratio_vs_fastest_peer"]) and isinstance(result["pass"], bool)


@pytest.fixture(scope="module")
def batch_result() -> dict[str, Any]:
    return batch_path.run(300, 1)


def test_batch_path_smoke(batch_result: dict[str, Any]) -> None:
    s, c = batch_result["submit"], batch_result["collect"]
    assert s["requests"] == 300 and s["chunks"] == 1 and s["submitted"] == 1 and s["bytes"] > 300 * 500
    assert c["batches"] == 1 and c["ok"] == 300 and c["failed"] == 0
    assert c["judgments"] == 300 and c["scored"] == 300  # every result parsed into a score
    for phase in (s, c):
        assert _positive(phase["total_s"]) and _positive(phase["peak_rss_mb"])
    assert set(batch_result["pass"]) == {"submit", "collect"}
    assert "download + parse" in batch_path.render(batch_result)


@pytest.fixture(scope="module")
def consensus_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from benchmarks import consensus_pairs

    out = tmp_path_factory.mktemp("consensus") / "c.json"
    assert consensus_pairs.main(["--judgments", "3000", "--runs", "1", "--json", str(out)]) == 0
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_consensus_smoke(consensus_result: dict[str, Any]) -> None:
    assert {r["scenario"] for r in consensus_result["results"]} == {"pairwise", "absolute", "mixed"}
    for r in consensus_result["results"]:
        assert r["judgments"] == 3000 and r["pairs"] > 0 and _positive(r["median_s"]["total"])
    assert "| mixed | 3,000 |" in bench_main.render_consensus(consensus_result)


@pytest.fixture(scope="module")
def orchestration_result(tmp_path_factory: pytest.TempPathFactory, prefect_harness: Path) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch, Simulator() as sim:
        patch.setenv(orchestration.KEY_ENV, "sk-bench-smoke")
        data = orchestration.measure(sim.openai_base_url, 60, 20, 1, 50, tmp_path_factory.mktemp("orch"))
    return orchestration.summarize(data, 60, 20, 1, 50)


@pytest.mark.prefect
def test_orchestration_smoke(orchestration_result: dict[str, Any]) -> None:
    r = orchestration_result
    # 60 rows x 2 responses = 120 requests in chunks of 50: 3 live chunk tasks; 20 rows: 1
    by_name = r["task_runs_by_name"]
    chunk_tasks = [k for k in by_name if k.startswith("judge-live")]
    assert chunk_tasks and sum(by_name[k] for k in chunk_tasks) == 3
    assert r["task_runs"] - r["task_runs_small"] == 2 and r["flow_runs"] >= 1
    assert r["flow_counts"]["rows_judged"] == r["direct_counts"]["rows_judged"] == 60
    assert r["flow_counts"]["pairs"] == r["direct_counts"]["pairs"]
    assert _positive(r["flow_s"]) and _positive(r["direct_s"]) and isinstance(r["pass"]["overhead"], bool)
    assert "flow wall time vs core called directly" in orchestration.render(r)


# --- the report ------------------------------------------------------------------------------


@pytest.mark.prefect
def test_report_renders_every_section(
    live_result: dict[str, Any], batch_result: dict[str, Any], consensus_result: dict[str, Any],
    orchestration_result: dict[str, Any], tmp_path: Path,
) -> None:
    outcomes = {
        "live": bench_main.Outcome("live", ["python", "-m", "benchmarks.live_judging"], 1.0, live_result),
        "peers": bench_main.Outcome("peers", ["python", "-m", "benchmarks.peers"], error="exit 1: boom"),
        "batch": bench_main.Outcome("batch", ["python", "-m", "benchmarks.batch_path"], 1.0, batch_result),
        "consensus": bench_main.Outcome("consensus", ["python", "-m", "x"], 1.0, consensus_result,
                                        profiles={"scenario mixed": "ncalls  tottime"}),
        "orchestration": bench_main.Outcome("orchestration", ["python", "-m", "x"], 1.0, orchestration_result),
        "gpu": bench_main.Outcome("gpu", ["python", "benchmarks/pairrm_gpu.py"], error="no CUDA GPU"),
    }
    args = argparse.Namespace(quick=True)
    text = bench_main.render_report(outcomes, args, machine_info(), datetime.now(UTC), 60.0, ["--quick"])
    for heading in ("## Summary", "## 1. Live judging", "## 2. Peers", "## 3. Batch path", "## 4. Consensus",
                    "## 5. Orchestration", "## 6. PairRM on a GPU"):
        assert heading in text
    assert "no CUDA GPU" in text and "exit 1: boom" in text and "Profile of the missed target" in text
    summary = text.split("## Summary", 1)[1].split("## 1.", 1)[0]
    assert "batch: build+split+upload" in summary and "orchestration: task runs" in summary
    assert all(line.rstrip().endswith(("PASS |", "MISS |", "n/a |")) for line in summary.splitlines()
               if line.startswith("| ") and not line.startswith("| figure"))
