"""The no-credentials demo: the whole nightly build against local stand-ins of every service.

Three judges, all answered by judgeflow's provider simulator on loopback:

* ``gpt-batch``   OpenAI Batch API (Files + Batches), Prometheus 2 absolute grading, 1-5;
* ``claude-batch`` Anthropic Message Batches, pairwise preference (JSON verdicts), both orders;
* ``prometheus``  Prometheus 2 relative grading through an OpenAI-compatible endpoint, as a
  ``vllm serve`` would expose it, called live, both orders;

and the dataset is published to an S3-compatible server (moto's server mode) on loopback.
Nothing needs a key or the network.

The config it runs with is written out, SHORT (only what differs from the defaults, with comments
saying how to run it again), and never over a file the user edited: ``config.yaml`` is written
when absent or still the demo's own (its sha256 is kept beside it), else ``config.demo.yaml``.
It points at the stand-ins on FIXED loopback ports, which ``judgeflow demo --serve`` starts, so
``judgeflow run judgeflow-demo/config.yaml`` works again while they run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from judgeflow.config import BuildConfig
from judgeflow.errors import EnvironmentProblem

DEMO_BUCKET = "judgeflow-demo"
DEMO_KEY_ENV = "JUDGEFLOW_DEMO_API_KEY"  # a placeholder value: the simulator accepts any key
#: Loopback ports of ``judgeflow demo --serve`` (below Linux's ephemeral range, so a client
#: socket never holds them); the written config points at them.
SERVE_SIM_PORT = 17801
SERVE_S3_PORT = 17802
HOST = "127.0.0.1"
#: Throwaway credentials the stand-ins accept; a shell that runs the demo's config sets them.
DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    DEMO_KEY_ENV: "sk-demo-not-a-real-key",
}
CONFIG_NAME = "config.yaml"
FALLBACK_NAME = "config.demo.yaml"
HASH_NAME = ".config.yaml.sha256"  # the sha256 of the config.yaml the demo wrote last


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


def serve_urls(sim_port: int = SERVE_SIM_PORT, s3_port: int = SERVE_S3_PORT) -> dict[str, str]:
    """The stand-ins' URLs on the given loopback ports (``demo_config``'s keyword arguments)."""
    sim = f"http://{HOST}:{sim_port}"
    return {"openai_base_url": f"{sim}/v1", "anthropic_base_url": sim, "s3_endpoint": f"http://{HOST}:{s3_port}"}


def export_line() -> str:
    """The shell line that gives another terminal the stand-ins' throwaway credentials."""
    return "export " + " ".join(f"{k}={v}" for k, v in DEMO_ENV.items() if k != "AWS_DEFAULT_REGION")


#: Keys written for every judge even at their default: what the judge is, read at a glance (and
#: a judge without provider or model would be taken for a registered judge's name).
JUDGE_IDENTITY = ("name", "kind", "provider", "mode", "model", "template", "rubric")


def short_config(config: BuildConfig) -> dict[str, Any]:
    """``config`` as plain data holding only keys that differ from the defaults (plus each
    judge's identity, ``JUDGE_IDENTITY``)."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    judges = []
    for spec in config.judges:
        full = spec.model_dump(mode="json")
        changed = spec.model_dump(mode="json", exclude_defaults=True)
        keep = [k for k in full if k in JUDGE_IDENTITY or k in changed]
        judges.append({k: changed.get(k, full[k]) for k in keep})
    data["judges"] = judges
    return data


def config_text(config: BuildConfig, out_dir: Path) -> str:
    """The demo's config as SHORT commented YAML: only keys that differ from the defaults."""
    body = yaml.safe_dump(short_config(config), sort_keys=False)
    config_path = out_dir / CONFIG_NAME
    return f"""\
# judgeflow demo config: only the keys that differ from judgeflow's defaults
# (every other setting keeps its default; `judgeflow init` writes a config for your own data).
#
# Run it again while the demo's stand-ins run (simulator on port {SERVE_SIM_PORT}, S3 on {SERVE_S3_PORT}):
#   terminal 1:  judgeflow demo --serve --out {out_dir}
#   terminal 2:  {export_line()}
#                judgeflow run {config_path}
#
# Keys: every judge reads its API key from the environment variable {DEMO_KEY_ENV}
# (api_key_env below; the simulator accepts any value). S3 credentials come from the AWS chain
# (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; the local S3 server accepts any).
# The verdicts come from the simulator (a hash of the texts, not a model): to judge for real,
# remove base_url and set api_key_env to OPENAI_API_KEY / ANTHROPIC_API_KEY.
{body}"""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_demo_config(config: BuildConfig, out_dir: Path) -> tuple[Path, bool]:
    """Write the demo's config; (its path, whether it went to ``config.demo.yaml``).

    ``config.yaml`` is (re)written only when absent or still exactly what the demo wrote last
    (its sha256 beside it); a config the user edited is left alone and the demo's goes to
    ``config.demo.yaml``.
    """
    text = config_text(config, out_dir).encode("utf-8")
    target = out_dir / CONFIG_NAME
    stamp = out_dir / HASH_NAME
    ours = stamp.is_file() and target.is_file() and _sha256(target.read_bytes()) == stamp.read_text().strip()
    if target.exists() and not ours:
        fallback = out_dir / FALLBACK_NAME
        fallback.write_bytes(text)
        return fallback, True
    target.write_bytes(text)
    stamp.write_text(_sha256(text) + "\n", encoding="utf-8")
    return target, False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _check_port(port: int, what: str) -> None:
    """A busy port as one clear error (before anything starts), not a bind traceback."""
    if port == 0:
        return
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            raise EnvironmentProblem(
                f"port {port} on {HOST} is already in use ({what})", f"{HOST}:{port}",
                "stop what listens there (another `judgeflow demo --serve`?) or choose other ports "
                "(--sim-port / --s3-port)",
            ) from None


@dataclass(frozen=True)
class DemoServices:
    openai_base_url: str
    anthropic_base_url: str
    s3_endpoint: str


@contextmanager
def demo_services(sim_port: int = 0, s3_port: int = 0) -> Iterator[DemoServices]:
    """The simulator and a moto S3 server on loopback (free ports unless given), credentials set."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EnvironmentProblem(
            "the demo needs its extra (moto's S3 server)", None, "pip install 'judgeflow[demo]'"
        ) from exc
    import boto3

    from judgeflow.simulator import Simulator

    _check_port(sim_port, "the provider simulator")
    _check_port(s3_port, "the local S3 server")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    for name, value in DEMO_ENV.items():
        os.environ.setdefault(name, value)
    port = s3_port or _free_port()
    s3_server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    s3_server.start()
    endpoint = f"http://{HOST}:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=DEMO_BUCKET)
        with Simulator(_demo_faults().model_copy(update={"port": sim_port, "host": HOST})) as sim:
            yield DemoServices(sim.openai_base_url, sim.anthropic_base_url, endpoint)
    finally:
        s3_server.stop()
