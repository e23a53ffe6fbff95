"""Prometheus on vLLM, CPU build: judgeflow's chunk path vs prometheus-eval's ``VLLM`` path.

Both grade the same absolute items (no reference answer) on the same engine instance (the
tiny model of ``infra/local/make_engine_env.py``, vLLM 0.32's CPU backend), with the same
sampling and seed and the same re-ask policy (prometheus-eval re-asks unparseable replies up to
10 times; judgeflow is given ``max_parse_retries: 10``), so both make the same generate calls:
the ratio is what each path costs around the engine.

* judgeflow: ``judgeflow.gpu.vllm_runner.run_chunk`` on a rows file and a requests file, as the
  ``judge-chunk-prometheus-vllm`` task runs it: read the slice, skip what is judged, render the
  Prometheus prompts (Mistral format), one ``generate`` for the chunk, parse, re-ask, write the
  judgments part (Parquet).
* prometheus-eval 0.1.20: ``PrometheusEval(model=VLLM(...)).absolute_grade(...)`` on the same
  items: format, ``generate``, parse, re-ask.

The engine starts once (not timed), each path runs once untimed (first-use costs), then the
two run alternately, ``--repeats`` times each, and each figure is the median, so the load of a
shared machine weighs on both alike.

    python -m benchmarks.vllm_cpu                       # 256 items, 3 repeats, 64 tokens
    python -m benchmarks.vllm_cpu --items 64 --repeats 1 --json out.json

The first run creates the engine environment (minutes; cached under ~/.cache/judgeflow).
The KV cache and the per-step token budget are sized so that all items are scheduled at once
and every prompt is prefilled in one step: vLLM 0.32's CPU backend fails a seeded request whose
prompt is split over two steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "apple river stone light water green quick answer number simple clear python list sort city "
    "capital france paris history cell energy plant sun moon star earth sea write explain give name "
    "describe compare small large old new first last best good bad fast slow warm cold code loop"
).split()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=256, help="absolute items graded per run")
    p.add_argument("--repeats", type=int, default=3, help="runs per path, alternating (median reported)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=1234, help="sampling seed (both paths)")
    p.add_argument("--kv-cache-mb", type=int, default=256, help="KV cache (MiB): room for every item at once")
    p.add_argument("--max-batched-tokens", type=int, default=131_072,
                   help="per-step token budget: every prompt prefilled in one step (seeded sampling needs it)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _items(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)

    def sentence(lo: int, hi: int, end: str) -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi))).capitalize() + end

    return [{"instruction": sentence(4, 9, "?"), "response": sentence(4, 12, ".")} for _ in range(n)]


def inner(args: argparse.Namespace, model_dir: str, llm_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Runs in the engine environment: one engine, both paths, alternating."""
    import polars as pl
    from prometheus_eval import PrometheusEval
    from prometheus_eval.prompts import ABSOLUTE_PROMPT_WO_REF, load_rubric
    from prometheus_eval.vllm import VLLM

    from judgeflow.gpu.vllm_runner import run_chunk
    from judgeflow.judging.records import read_judgments
    from judgeflow.schemas import content_hash
    from judgeflow.specs import JudgeSpec, expand_requests

    items = _items(args.items, args.seed)
    sampling = {"temperature": 1.0, "top_p": 0.9, "max_tokens": args.max_tokens, "repetition_penalty": 1.03,
                "seed": args.seed}
    spec = JudgeSpec(name="bench", provider="vllm", mode="gpu", model=model_dir, rubric="helpfulness",
                     sampling=sampling, max_parse_retries=10)
    started = time.perf_counter()
    engine = VLLM(model_dir, **llm_kwargs)  # prometheus-eval's; judgeflow uses the same vllm.LLM
    engine_seconds = time.perf_counter() - started

    tmp = Path(tempfile.mkdtemp(prefix="jf-vllm-bench-"))
    rows = pl.DataFrame({
        "row_id": [f"r{i:05d}" for i in range(len(items))],
        "instruction": [i["instruction"] for i in items],
        "responses": [[i["response"]] for i in items],
        "reference": [None] * len(items),
    }, schema_overrides={"reference": pl.String})
    rows = rows.with_columns(pl.Series("content_hash", [
        content_hash(r["instruction"], r["responses"], None) for r in rows.iter_rows(named=True)]))
    requests = expand_requests(rows, spec)
    rows.write_parquet(tmp / "rows.parquet")
    requests.write_parquet(tmp / "requests.parquet")

    def judgeflow_run(k: int) -> dict[str, Any]:
        out = tmp / f"out-{k}"
        summary = run_chunk(spec, str(tmp / "rows.parquet"), str(tmp / "requests.parquet"), str(out),
                            engine=engine.model)
        got = read_judgments(str(out)).collect()
        return {"ok": int((got["status"] == "ok").sum()), "calls": summary["generate_calls"]}

    judge = PrometheusEval(model=engine, absolute_grade_template=ABSOLUTE_PROMPT_WO_REF)
    rubric = load_rubric("helpfulness", "absolute")
    # requests come sorted by row id, and so do the items here: the same order on both paths
    order = [int(r[1:]) for r in requests["row_id"].to_list()]

    def prometheus_eval_run(k: int) -> dict[str, Any]:
        _, scores = judge.absolute_grade(
            instructions=[items[i]["instruction"] for i in order], responses=[items[i]["response"] for i in order],
            rubric=rubric, params=sampling,
        )
        return {"ok": sum(s is not None for s in scores)}

    runs: dict[str, list[float]] = {"judgeflow": [], "prometheus_eval": []}
    outcome: dict[str, Any] = {}
    judgeflow_run(-1)  # warm-up, untimed: first-use costs (imports, template compile, writers)
    prometheus_eval_run(-1)
    for k in range(args.repeats):
        for name, fn in (("judgeflow", judgeflow_run), ("prometheus_eval", prometheus_eval_run)):
            t0 = time.perf_counter()
            outcome[name] = fn(k)
            runs[name].append(time.perf_counter() - t0)
    result: dict[str, Any] = {}
    for name, times in runs.items():
        median = statistics.median(times)
        result[name] = {"seconds": round(median, 3), "runs_seconds": [round(t, 3) for t in times],
                        "items_per_s": round(args.items / median, 1), **outcome[name]}
    result["ratio_judgeflow_over_prometheus_eval"] = round(
        result["judgeflow"]["items_per_s"] / result["prometheus_eval"]["items_per_s"], 2)
    import vllm

    result.update({"engine_start_seconds": round(engine_seconds, 1), "vllm": vllm.__version__,
                   "items": args.items, "max_tokens": args.max_tokens})
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.inner:
        job = json.loads(sys.stdin.read())
        print(json.dumps(inner(args, job["model"], job["llm"])))
        return {}
    from infra.local.make_engine_env import LLM_KWARGS, engine_environment, ensure_engine_env

    env = ensure_engine_env(log=lambda m: print(m, file=sys.stderr))
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--json")]
    if args.json is not None and str(args.json) in forwarded:
        forwarded.remove(str(args.json))
    load = os.getloadavg()[0]
    proc = subprocess.run(
        [env.python, "-m", "benchmarks.vllm_cpu", "--inner", *forwarded],
        input=json.dumps({"model": env.model, "llm": {**LLM_KWARGS, "kv_cache_memory_bytes": args.kv_cache_mb << 20,
                                                       "max_num_batched_tokens": args.max_batched_tokens}}),
        capture_output=True, text=True,
        env=engine_environment(), cwd=REPO, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit("benchmark failed in the engine env:\n" + "\n".join(proc.stderr.splitlines()[-30:]))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update({
        "command": "python -m benchmarks.vllm_cpu " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, OMP_NUM_THREADS=1",
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "engine": f"vllm-cpu {result['vllm']} (vLLM's CPU backend), tiny Mistral-shaped model ({Path(env.model).name})",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    })
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
