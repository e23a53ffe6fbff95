"""Peer driver: distilabel 1.5.3 ``PrometheusEval`` with ``OpenAILLM`` against the judgeflow simulator.

Runs inside the throwaway venv that ``benchmarks/peers.py --setup`` creates (/tmp/peer-distilabel),
never in judgeflow's own environment, so it imports nothing from judgeflow. The rows are generated
with the same formula as ``benchmarks/live_judging.py`` so every client judges the same texts.

The task is driven directly, one ``process`` call per batch of ``--concurrency`` rows (what a
pipeline step does per ``input_batch_size``), without a ``Pipeline``: that leaves out distilabel's
per-run pipeline start-up (about 3 s), which favours the peer.

Prints one JSON line: {"peer", "rows", "ok", "seconds", "rows_per_s", "cpu_s"}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")

    from distilabel.models import OpenAILLM
    from distilabel.steps.tasks import PrometheusEval

    n = args.rows
    inputs = [
        {"instruction": f"Write one sentence about topic {i}.",
         "generation": f"Topic {i} is interesting because of reason {i % 97}."}
        for i in range(n)
    ]
    llm = OpenAILLM(model="gpt-4o-mini", base_url=args.base_url, api_key="sk-bench", max_retries=2, timeout=120)
    task = PrometheusEval(llm=llm, mode="absolute", rubric="helpfulness", reference=False,
                          input_batch_size=args.concurrency)
    task.load()
    for _ in task.process(inputs[:1]):  # warm-up (not timed): first-call set-up of the client
        pass
    cpu0, t0 = time.process_time(), time.perf_counter()
    ok = 0
    for start in range(0, n, args.concurrency):
        for out in task.process(inputs[start:start + args.concurrency]):
            ok += sum(1 for row in out if row.get("result") is not None)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(json.dumps({
        "peer": "distilabel", "rows": n, "ok": ok, "seconds": wall, "rows_per_s": n / wall,
        "cpu_s": cpu, "cpu_ms_per_row": cpu * 1000 / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
