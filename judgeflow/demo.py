"""The no-credentials demo: the whole nightly build against local stand-ins of every service.

Three judges, all answered by judgeflow's provider simulator on loopback:

* ``gpt-batch``   OpenAI Batch API (Files + Batches), Prometheus 2 absolute grading, 1-5;
* ``claude-batch`` Anthropic Message Batches, pairwise preference (JSON verdicts), both orders;
* ``prometheus``  Prometheus 2 relative grading through an OpenAI-compatible endpoint, as a
  ``vllm serve`` would expose it, called live, both orders;

and the dataset is published to an S3-compatible server (moto's server mode) on loopback.
Nothing needs a key or the network; the config it runs with is written out for copying.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from judgeflow.config import BuildConfig

DEMO_BUCKET = "judgeflow-demo"
DEMO_KEY_ENV = "JUDGEFLOW_DEMO_API_KEY"  # a placeholder value: the simulator accepts any key


def _demo_faults() -> Any:
    from judgeflow.simulator import SimulatorConfig

    # A little of what real judges do, so the demo shows it being handled: rate limits (retried
    # per Retry-After), replies with no verdict (re-asked), and a judge that sometimes prefers
    # whichever answer it saw first (both orders are judged: that shows up as ties and in the
    # position-consistency rate).
    return SimulatorConfig(rate_429=0.02, rate_unparseable=0.03, position_bias_rate=0.1, seed=7)


def sample_data_path() -> Path:
    """The bundled sample rows (valid ones and a few deliberately broken)."""
    return Path(str(resources.files("judgeflow") / "data" / "sample_rows.jsonl"))


def demo_config(*, openai_base_url: str, anthropic_base_url: str, s3_endpoint: str, out_dir: Path) -> BuildConfig:
    """The build the demo runs; point the URLs elsewhere and it is a real build config."""
    fast_batches = {"poll_initial_s": 0.3, "poll_max_s": 2.0, "poll_backoff": 1.5, "deadline_s": 600}
    return BuildConfig.model_validate(
        {
            "dataset": "demo-preferences",
            "input": {"uri": str(sample_data_path())},
            "judges": [
                {
                    "name": "gpt-batch", "kind": "absolute", "provider": "openai", "mode": "batch",
                    "model": "gpt-4o-mini", "base_url": openai_base_url, "api_key_env": DEMO_KEY_ENV,
                    "template": "prometheus", "rubric": "helpfulness", "batch": fast_batches,
                },
                {
                    "name": "claude-batch", "kind": "pairwise", "provider": "anthropic", "mode": "batch",
                    "model": "claude-3-5-haiku-latest", "base_url": anthropic_base_url,
                    "api_key_env": DEMO_KEY_ENV, "template": "pairwise-json", "both_orders": True,
                    "batch": fast_batches,
                },
                {
                    "name": "prometheus", "kind": "relative", "provider": "openai-compatible",
                    "mode": "live", "model": "prometheus-eval/prometheus-7b-v2.0",
                    "base_url": openai_base_url, "api_key_env": DEMO_KEY_ENV,
                    "template": "prometheus", "rubric": "helpfulness", "both_orders": True,
                    "concurrency": 32,
                },
            ],
            "pairs": {"source": "auto", "strategy": "best-vs-worst", "min_margin": 1.0},
            "output": {
                "dir": str(out_dir / "work"),
                "publish_uri": f"s3://{DEMO_BUCKET}/datasets",
                "formats": ["parquet", "jsonl"],
                "s3": {"endpoint_url": s3_endpoint, "region": "us-east-1"},
            },
            "chunk_size": 2_000,
        }
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class DemoServices:
    openai_base_url: str
    anthropic_base_url: str
    s3_endpoint: str


@contextmanager
def demo_services() -> Iterator[DemoServices]:
    """The simulator and a moto S3 server on loopback, with throwaway credentials set."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the demo needs its extra: pip install 'judgeflow[demo]'") from exc
    import boto3

    from judgeflow.simulator import Simulator

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    for name, value in {
        "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo-secret",
        "AWS_DEFAULT_REGION": "us-east-1", DEMO_KEY_ENV: "sk-demo-not-a-real-key",
    }.items():
        os.environ.setdefault(name, value)
    port = _free_port()
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3_server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=DEMO_BUCKET)
        with Simulator(_demo_faults()) as sim:
            yield DemoServices(sim.openai_base_url, sim.anthropic_base_url, endpoint)
    finally:
        s3_server.stop()
