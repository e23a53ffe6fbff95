"""What ``import judgeflow; judgeflow.judge(...)`` costs a notebook: time and memory.

Each measurement is a fresh interpreter (``--child``) that imports judgeflow, judges 100 rows of
two candidates (200 Prometheus absolute requests) with an inline OpenAI-compatible judge against
the simulator (in its own process, fault-free, no latency), and reports:

* ``import_s``: ``import judgeflow`` plus the first ``judgeflow.judge`` attribute access (what
  loads ``judgeflow.api`` and everything it imports);
* ``judge_s``: the ``judge`` call itself (validate, render, 200 HTTP requests, parse, store);
* ``peak_rss_mb``: the child's peak resident memory (``VmHWM``), the interpreter included;
  ``python_rss_mb`` is a bare interpreter's, for scale; ``peak_private_mb`` the anonymous part
  at the end (``RssAnon``: without the shared-library pages, mostly polars' binary, that the
  resident figure also counts);
* ``best_*``: the fastest child, the figure least disturbed by other load on a shared box;
* ``heavy_loaded``: which of scipy, sklearn, krippendorff, matplotlib, boto3, botocore ended up
  in ``sys.modules`` (none should: ``tests/test_import_light.py`` asserts it).

Targets (issue 15): import + judge of 100 rows under 0.5 s, peak memory under 100 MB.

    python -m benchmarks.import_cost --repeats 5 --json import_cost.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

HEAVY = ("scipy", "sklearn", "krippendorff", "matplotlib", "boto3", "botocore")
TARGET_S = 0.5
TARGET_MB = 100.0
ROWS = 100


def peak_mb() -> float:
    """This process's peak resident memory in MiB since its ``exec``.

    ``VmHWM`` from /proc, not ``ru_maxrss``: Linux keeps ``ru_maxrss`` across ``execve``, so a
    child forked from a large parent would report the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def private_mb() -> float:
    """Resident anonymous memory in MiB now (``RssAnon``): the process's own, not the pages of
    shared libraries it has touched (polars' binary is most of those); 0 where /proc lacks it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def child(base_url: str, rows: int) -> dict[str, Any]:
    """One measurement, in this (fresh) interpreter: nothing of judgeflow is imported yet."""
    t0 = time.perf_counter()
    import judgeflow

    judge = judgeflow.judge
    t1 = time.perf_counter()
    data = [{"instruction": f"Write one sentence about topic {i}.",
             "responses": [f"Topic {i} matters.", f"Topic {i} matters for reason {i % 7}, and here is why."]}
            for i in range(rows)]
    result = judge(data, judges=[{"name": "bench", "provider": "openai-compatible", "base_url": base_url,
                                  "model": "prometheus-7b-v2.0", "api_key": "sk-import-cost-bench-0000"}])
    t2 = time.perf_counter()
    stats = result.stats.row(0, named=True)
    return {
        "import_s": t1 - t0,
        "judge_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_mb": peak_mb(),
        "peak_private_mb": private_mb(),
        "requests": stats["sent"],
        "ok": stats["ok"],
        "heavy_loaded": sorted(m for m in HEAVY if m in sys.modules),
    }


def run(repeats: int, rows: int) -> dict[str, Any]:
    """``repeats`` children against one simulator process; medians and the worst peak memory."""
    from benchmarks.common import machine_info, median, python_module, run_json_child
    from judgeflow.simulator import Simulator

    bare = run_json_child(python_module("benchmarks.import_cost", "--bare"))
    runs = []
    with Simulator(process=True) as sim:
        for _ in range(repeats):
            runs.append(run_json_child(python_module("benchmarks.import_cost", "--child", sim.openai_base_url,
                                                     "--rows", str(rows))))
    out: dict[str, Any] = {
        "rows": rows,
        "repeats": repeats,
        "import_s": median(r["import_s"] for r in runs),
        "judge_s": median(r["judge_s"] for r in runs),
        "total_s": median(r["total_s"] for r in runs),
        "best_import_s": min(r["import_s"] for r in runs),
        "best_total_s": min(r["total_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "peak_private_mb": max(r["peak_private_mb"] for r in runs),
        "python_rss_mb": bare["rss"],
        "requests": runs[0]["requests"],
        "ok": min(r["ok"] for r in runs),
        "heavy_loaded": sorted({m for r in runs for m in r["heavy_loaded"]}),
        "loadavg_1m": machine_info().get("loadavg_1m"),
    }
    out["meets_time"] = out["total_s"] < TARGET_S
    out["meets_memory"] = out["peak_rss_mb"] < TARGET_MB
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh interpreters measured (median)")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows judged (two candidates each)")
    parser.add_argument("--json", help="write the figures here as JSON")
    parser.add_argument("--child", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:  # the interpreter alone (with this module), for scale
        print(json.dumps({"rss": peak_mb()}))
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.rows)))
        return 0
    from benchmarks.common import write_json

    data = run(args.repeats, args.rows)
    write_json(args.json, data)
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
