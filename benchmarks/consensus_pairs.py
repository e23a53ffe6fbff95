"""Benchmark: consensus + agreement + pairs over 1,000,000 synthetic judgments from 3 judges.

    python -m benchmarks.consensus_pairs [--judgments 1000000] [--runs 3] [--json out.json]

Targets (2 cores): under 10 s per build step chain and under 2 GB peak RSS. Each scenario runs
in its own child process so that its peak RSS (``ru_maxrss``, input frame included) is its own:

* ``pairwise``: 3 pairwise judges, 4 candidates, both orders (36 judgments per row);
* ``absolute``: 3 absolute judges, 4 candidates (12 judgments per row);
* ``mixed``: 2 pairwise judges + 1 absolute judge (28 judgments per row).

The judgments are synthetic but realistic in shape: a latent quality per candidate, noisy
judges, a 10% position-bias flip on the BA order, 2% failed judgments, 80-character feedback.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import polars as pl

from judgeflow.agreement import compute_agreement
from judgeflow.consensus import ConsensusPolicy, merge
from judgeflow.pairs import build_pairs
from judgeflow.schemas import JUDGMENTS_SCHEMA, ROWS_SCHEMA

N_CANDIDATES = 4
SCENARIOS: dict[str, tuple[int, int]] = {  # name -> (pairwise judges, absolute judges)
    "pairwise": (3, 0),
    "absolute": (0, 3),
    "mixed": (2, 1),
}
FEEDBACK = [
    f"Response {k} addresses the instruction {'well' if k % 2 else 'partly'}; reasoning is "
    f"{'clear' if k % 3 else 'thin'} and facts check out. Score follows."[:80]
    for k in range(16)
]


def _judgments_per_row(pairwise: int, absolute: int) -> int:
    n_pairs = N_CANDIDATES * (N_CANDIDATES - 1) // 2
    return pairwise * n_pairs * 2 + absolute * N_CANDIDATES


def synthesize(n_judgments: int, pairwise: int, absolute: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows, judgments) with about ``n_judgments`` judgments, built with numpy/polars only."""
    rng = np.random.default_rng(seed)
    n_rows = -(-n_judgments // _judgments_per_row(pairwise, absolute))
    row_ids = pl.Series("row_id", [f"row-{k:08d}" for k in range(n_rows)])
    quality = rng.normal(0, 1, (n_rows, N_CANDIDATES))
    responses = pl.Series("responses", [[f"answer {i} " * (3 + i) for i in range(N_CANDIDATES)]] * n_rows)
    rows = pl.DataFrame(
        {
            "row_id": row_ids,
            "instruction": pl.Series([f"instruction {k}" for k in range(n_rows)]),
            "responses": responses,
            "models": pl.Series([[f"gen-{i}" for i in range(N_CANDIDATES)]] * n_rows),
            "reference": pl.Series([None] * n_rows, dtype=pl.String),
            "metadata": pl.Series(["{}"] * n_rows),
            "source_index": pl.Series(np.arange(n_rows, dtype=np.int64)),
            "content_hash": row_ids,
        },
        schema=ROWS_SCHEMA,
    )
    parts: list[pl.DataFrame] = []
    lo, hi = np.triu_indices(N_CANDIDATES, 1)
    for j in range(pairwise):
        # shown pairs: (lo, hi) as AB and (hi, lo) as BA, for every row
        a = np.concatenate([lo, hi]).astype(np.int32)
        b = np.concatenate([hi, lo]).astype(np.int32)
        order = np.array(["AB"] * len(lo) + ["BA"] * len(lo))
        ridx = np.repeat(np.arange(n_rows), len(a))
        ca, cb = np.tile(a, n_rows), np.tile(b, n_rows)
        diff = quality[ridx, ca] - quality[ridx, cb] + rng.normal(0, 0.8, len(ridx))
        verdict = np.where(diff > 0, "A", "B")
        flip = (np.tile(order, n_rows) == "BA") & (rng.random(len(ridx)) < 0.10)
        verdict = np.where(flip, np.where(verdict == "A", "B", "A"), verdict)
        parts.append(_frame(rng, f"pw{j}", "pairwise", ridx, row_ids, ca, cb, np.tile(order, n_rows), verdict, None))
    for j in range(absolute):
        ridx = np.repeat(np.arange(n_rows), N_CANDIDATES)
        ca = np.tile(np.arange(N_CANDIDATES, dtype=np.int32), n_rows)
        score = np.clip(np.round(3 + quality[ridx, ca] + rng.normal(0, 0.7, len(ridx))), 1, 5)
        parts.append(_frame(rng, f"abs{j}", "absolute", ridx, row_ids, ca, None, None, None, score))
    judgments = pl.concat(parts).head(n_judgments)
    return rows, judgments


def _frame(
    rng: np.random.Generator, judge: str, kind: str, ridx: np.ndarray, row_ids: pl.Series,
    ca: np.ndarray, cb: np.ndarray | None, order: np.ndarray | None, verdict: np.ndarray | None,
    score: np.ndarray | None,
) -> pl.DataFrame:
    n = len(ridx)
    failed = rng.random(n) < 0.02
    df = pl.DataFrame(
        {
            "row_id": row_ids.gather(ridx),
            "candidate_a": ca,
            "candidate_b": cb if cb is not None else pl.Series([None] * n, dtype=pl.Int32),
            "order": order if order is not None else pl.Series([None] * n, dtype=pl.String),
            "verdict": verdict if verdict is not None else pl.Series([None] * n, dtype=pl.String),
            "score": score if score is not None else pl.Series([None] * n, dtype=pl.Float64),
            "failed": failed,
            "feedback": pl.Series(FEEDBACK).gather(rng.integers(0, len(FEEDBACK), n)),
        }
    )
    ok = ~pl.col("failed")
    return df.select(
        pl.concat_str([pl.lit(f"jf{judge}-"), pl.int_range(pl.len()).cast(pl.String)]).alias("request_id"),
        "row_id",
        pl.lit(judge).alias("judge"),
        pl.lit(kind).alias("kind"),
        "candidate_a",
        "candidate_b",
        "order",
        pl.when(ok).then(pl.col("score")).alias("score"),
        pl.when(ok).then(pl.col("verdict")).alias("verdict"),
        pl.when(ok & (pl.col("verdict") == "A")).then(pl.col("candidate_a"))
        .when(ok & (pl.col("verdict") == "B")).then(pl.col("candidate_b")).alias("preferred"),
        pl.when(ok).then(pl.col("feedback")).alias("feedback"),
        pl.lit(None, dtype=pl.String).alias("raw_output"),
        pl.when(ok).then(pl.lit("ok")).otherwise(pl.lit("failed")).alias("status"),
        pl.when(~ok).then(pl.lit("timeout")).alias("error"),
        pl.lit(1).alias("attempts"),
        pl.lit(900).alias("input_tokens"),
        pl.lit(120).alias("output_tokens"),
        pl.lit(0.0002).alias("cost_usd"),
        pl.lit(f"model-{judge}").alias("judge_model"),
        pl.lit("tpl-0123456789ab").alias("template_hash"),
        pl.lit("spec-0123456789ab").alias("spec_hash"),
        pl.col("row_id").alias("content_hash"),
    ).cast(JUDGMENTS_SCHEMA)  # type: ignore[arg-type]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_scenario(name: str, n_judgments: int, runs: int) -> dict[str, Any]:
    """Time merge + agreement + pairs ``runs`` times in this process."""
    pairwise, absolute = SCENARIOS[name]
    rows, judgments = synthesize(n_judgments, pairwise, absolute)
    rss_input = _rss_mb()
    policy = ConsensusPolicy(weights={"pw0": 1.5})
    steps: dict[str, list[float]] = {"merge": [], "agreement": [], "pairs": [], "total": []}
    cpu: list[float] = []
    load_before = os.getloadavg()[0]
    n_pairs = 0
    for _ in range(runs):
        c0 = time.process_time()  # all threads of this process: less sensitive to a busy machine
        t0 = time.perf_counter()
        consensus = merge(judgments, policy)
        t1 = time.perf_counter()
        report = compute_agreement(consensus, kappa_weights="quadratic")
        t2 = time.perf_counter()
        pairs = build_pairs(rows, consensus, strategy="best-vs-worst", run_id="bench")
        t3 = time.perf_counter()
        cpu.append(time.process_time() - c0)
        n_pairs = pairs.height
        for key, value in (("merge", t1 - t0), ("agreement", t2 - t1), ("pairs", t3 - t2), ("total", t3 - t0)):
            steps[key].append(value)
        del consensus, pairs
    return {
        "scenario": name,
        "judgments": judgments.height,
        "rows": rows.height,
        "pairs": n_pairs,
        "runs": runs,
        "median_s": {k: statistics.median(v) for k, v in steps.items()},
        "all_total_s": steps["total"],
        "median_cpu_s": statistics.median(cpu),
        "load_avg_1m": [load_before, os.getloadavg()[0]],
        "input_mb": judgments.estimated_size("mb") + rows.estimated_size("mb"),
        "rss_after_input_mb": rss_input,
        "peak_rss_mb": _rss_mb(),
        "alpha_verdicts": report.alpha_verdicts,
        "alpha_scores": report.alpha_scores,
        "polars_threads": pl.thread_pool_size(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--json", dest="json_path", default=None, help="write results as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # one scenario, result as JSON on stdout
        print(json.dumps(run_scenario(args.scenario, args.judgments, args.runs)))
        return 0

    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    results = []
    for name in names:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.consensus_pairs", "--child", "--scenario", name,
             "--judgments", str(args.judgments), "--runs", str(args.runs)],
            check=True, capture_output=True, text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))

    print(f"cores: {os.cpu_count()}, 1-min load average before/after each scenario in the JSON")
    print("| scenario | judgments | rows | pairs | merge s | agreement s | pairs s | total s (median) | CPU s | peak RSS MB | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m = r["median_s"]
        ok = m["total"] < 10 and r["peak_rss_mb"] < 2048
        print(
            f"| {r['scenario']} | {r['judgments']:,} | {r['rows']:,} | {r['pairs']:,} | {m['merge']:.2f} | "
            f"{m['agreement']:.2f} | {m['pairs']:.2f} | {m['total']:.2f} | {r['median_cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{'met' if ok else 'MISSED'} |"
        )
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump({"targets": {"total_s": 10, "peak_rss_mb": 2048}, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
