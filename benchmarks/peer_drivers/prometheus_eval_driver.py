"""Peer driver: prometheus-eval 0.1.20 ``AsyncLiteLLM`` against the judgeflow simulator.

Runs inside the throwaway venv that ``benchmarks/peers.py --setup`` creates (/tmp/peer-pe), never
in judgeflow's own environment, so it imports nothing from judgeflow. The rows are generated with
the same formula as ``benchmarks/live_judging.py`` so every client judges the same texts.

Prints one JSON line: {"peer", "rows", "ok", "seconds", "rows_per_s", "cpu_s"}.

    /tmp/peer-pe/bin/python prometheus_eval_driver.py --base-url URL --rows 2000 --concurrency 256
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
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import

    from prometheus_eval import PrometheusEval
    from prometheus_eval.litellm import AsyncLiteLLM
    from prometheus_eval.prompts import ABSOLUTE_PROMPT_WO_REF, HELPFULNESS_RUBRIC

    n = args.rows
    instructions = [f"Write one sentence about topic {i}." for i in range(n)]
    responses = [f"Topic {i} is interesting because of reason {i % 97}." for i in range(n)]
    # batch_size = requests in flight; the rate limit is raised so it never throttles
    model = AsyncLiteLLM("openai/gpt-4o-mini", batch_size=args.concurrency, requests_per_minute=10**9,
                         api_base=args.base_url)
    judge = PrometheusEval(model=model, absolute_grade_template=ABSOLUTE_PROMPT_WO_REF)
    # warm-up (not timed): litellm imports its provider modules on the first call
    judge.absolute_grade(instructions=instructions[:1], responses=responses[:1], rubric=HELPFULNESS_RUBRIC)
    cpu0, t0 = time.process_time(), time.perf_counter()
    _feedbacks, scores = judge.absolute_grade(instructions=instructions, responses=responses, rubric=HELPFULNESS_RUBRIC)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    ok = sum(1 for s in scores if s is not None)
    print(json.dumps({
        "peer": "prometheus-eval", "rows": n, "ok": ok, "seconds": wall, "rows_per_s": n / wall,
        "cpu_s": cpu, "cpu_ms_per_row": cpu * 1000 / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
