"""Parameters that point the nightly build at a local stack (simulator + S3-compatible server).

Why derive them from ``deployments/prefect.yaml`` instead of writing a second config by hand:
the local run and the deployment test should exercise the *deployed* defaults (dataset, input,
consensus, pairs, output formats...) and change only what must differ locally: the judges' base
URLs, the S3 endpoint and bucket, the output folder. A default that stops validating against
``BuildConfig`` then fails here first.

    python -m infra.local.params --simulator http://127.0.0.1:8090 --s3 http://127.0.0.1:9000 \\
        --bucket judgeflow-datasets > params.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from judgeflow.config import BuildConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = PROJECT_ROOT / "deployments" / "prefect.yaml"


def load_prefect_yaml(path: Path = PREFECT_YAML) -> dict[str, Any]:
    """The deployments file with its YAML anchors resolved."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def deployment_entry(name: str, path: Path = PREFECT_YAML) -> dict[str, Any]:
    """One ``deployments[]`` entry by name (KeyError naming the known ones otherwise)."""
    entries = load_prefect_yaml(path)["deployments"]
    for entry in entries:
        if entry["name"] == name:
            return entry
    raise KeyError(f"no deployment {name!r} in {path} (known: {[e['name'] for e in entries]})")


def nightly_config(path: Path = PREFECT_YAML) -> dict[str, Any]:
    """The nightly deployment's default ``config`` parameter, validated as a ``BuildConfig``."""
    config = copy.deepcopy(deployment_entry("nightly-build", path)["parameters"]["config"])
    BuildConfig.model_validate(config)
    return config


def local_judges(simulator_url: str) -> list[dict[str, Any]]:
    """The nightly judges, switched to live mode against the provider simulator.

    Batch judges become live ones because a local run should finish in seconds; the keys are
    read from OPENAI_API_KEY / ANTHROPIC_API_KEY as in production (any value: the simulator
    does not check them).
    """
    base = simulator_url.rstrip("/")
    judges = []
    for judge in nightly_config()["judges"]:
        judge = {**judge, "mode": "live", "requests_per_minute": None}
        if judge["provider"] == "openai":
            judge["base_url"] = f"{base}/v1"
        elif judge["provider"] == "anthropic":
            judge["base_url"] = base
        else:
            continue  # GPU judges have no simulator
        judges.append(judge)
    return judges


def local_build_config(
    simulator_url: str,
    s3_endpoint: str,
    bucket: str,
    out_dir: str,
    prefix: str = "local",
    limit: int | None = None,
    input_uri: str | None = None,
) -> dict[str, Any]:
    """The nightly config with judges on the simulator and publishing to ``s3://bucket/prefix``."""
    config = nightly_config()
    config["judges"] = local_judges(simulator_url)
    if input_uri:
        config["input"]["uri"] = input_uri
    if limit is not None:
        config["input"]["limit"] = limit
    config["output"]["dir"] = out_dir
    config["output"]["publish_uri"] = f"s3://{bucket}/{prefix}"
    config["output"]["s3"] = {"endpoint_url": s3_endpoint, "region": "us-east-1"}
    config["budget_usd"] = None
    BuildConfig.model_validate(config)
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the build-local run parameters as JSON.")
    parser.add_argument("--simulator", required=True, help="simulator URL, e.g. http://127.0.0.1:8090")
    parser.add_argument("--s3", required=True, help="S3 endpoint URL, e.g. http://127.0.0.1:9000")
    parser.add_argument("--bucket", default="judgeflow-datasets")
    parser.add_argument("--out-dir", default=str(PROJECT_ROOT / ".judgeflow" / "stack" / "out"))
    parser.add_argument("--prefix", default="local")
    parser.add_argument("--limit", type=int, default=None, help="judge only the first N rows")
    args = parser.parse_args(argv)
    config = local_build_config(args.simulator, args.s3, args.bucket, args.out_dir, args.prefix, args.limit)
    json.dump({"config": config}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
