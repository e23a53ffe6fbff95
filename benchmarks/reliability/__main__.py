"""``python -m benchmarks.reliability [--quick] [--workdir DIR]``: last line = JSON summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from benchmarks.reliability.suite import run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced run (CI): one build, a few kills")
    parser.add_argument("--workdir", type=Path, default=None, help="keep everything here (default: a temp dir)")
    parser.add_argument("--prefect-api-url", default=None, help="use this Prefect server instead of starting one")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    summary = run_suite(quick=args.quick, workdir=args.workdir, prefect_api_url=args.prefect_api_url,
                        seed=args.seed)
    print(orjson.dumps(summary).decode(), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
