"""The long-lived services of the suite, all in the parent process so they outlive every kill.

* a Prefect API server (``prefect server start`` on a free loopback port) that every build
  subprocess reports to: flow runs, logs and artifacts survive the kills and can be read back;
* a moto S3 server on loopback, behind a ``FaultyProxy`` that injects 503 SlowDown and resets;
* simulators, one per trial, made by ``make_simulator`` (faults from ``FAULTS``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from judgeflow.simulator import Simulator, SimulatorConfig
from judgeflow.storage.s3 import S3Config
from judgeflow.testing.faulty_proxy import FaultRates, FaultyProxy

REPO = Path(__file__).resolve().parents[2]
PREFECT_BIN = Path(sys.executable).with_name("prefect")

# The stated rates. Live calls draw at most one fault each; batch faults per batch/request.
FAULTS: dict[str, Any] = {
    "rate_429": 0.10,            # 10% 429 with retry-after
    "rate_500": 0.05,            # 5% 5xx
    "rate_timeout": 0.02,        # 2% timeouts (held open past the client's timeout)
    "timeout_hold_s": 3.0,
    "rate_unparseable": 0.05,    # 5% judge outputs with no verdict (live and batch)
    "retry_after_s": 0.2,
    "expire_first_n_batches": 1,  # the first batch of each provider expires half done
    "batch_request_error_rate": 0.05,  # partial batch errors
    "status_429_rate": 0.05,     # 429s on batch status calls
    "batch_validating_s": 0.2,
    "batch_in_progress_s": 2.5,  # long enough to be killed while polling
    "batch_finalizing_s": 0.2,
}
S3_FAULTS = FaultRates(rate_503=0.05, rate_reset=0.02, rate_reset_after=0.02, seed=7)
# Credentials the suite hands to the build; none of them may show up anywhere.
CANARY_API_KEY = "sk-canary-RELIABILITY-3f9a1c7e5b2d-never-log"
CANARY_AWS_KEY_ID = "AKIACANARYRELIAB9X7Q"
CANARY_AWS_SECRET = "canary-aws-secret-9d8c7b6a5f4e3d2c1b0a-never-log"
API_KEY_ENV = "JF_RELIABILITY_KEY"
CANARIES = (CANARY_API_KEY, CANARY_AWS_SECRET, CANARY_AWS_KEY_ID)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrefectAPI:
    """A Prefect server the build subprocesses share (``api_url``) and its ``home``."""

    api_url: str
    home: Path
    proc: subprocess.Popen[bytes] | None = None
    owned: bool = False

    def child_env(self) -> dict[str, str]:
        """Environment for a build subprocess: this API, no telemetry, the canary credentials."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home / "client"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="ignore",
            PREFECT_LOGGING_LEVEL="INFO",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            AWS_ACCESS_KEY_ID=CANARY_AWS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=CANARY_AWS_SECRET,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE="/nonexistent/jf-reliability-aws-config",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent/jf-reliability-aws-credentials",
            **{API_KEY_ENV: CANARY_API_KEY},
        )
        return env


@contextlib.contextmanager
def prefect_api(home: Path, api_url: str | None = None, timeout: float = 120) -> Iterator[PrefectAPI]:
    """Use the server at ``api_url``, or start ``prefect server start`` on a free port."""
    home.mkdir(parents=True, exist_ok=True)
    if api_url:
        yield PrefectAPI(api_url=api_url, home=home)
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_ENABLED="false",
               PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}")
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen([str(PREFECT_BIN), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=home, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("prefect server did not become healthy")
            time.sleep(0.3)
        yield PrefectAPI(api_url=url, home=home, proc=proc, owned=True)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@dataclass
class S3Services:
    """moto on loopback (``direct``: the suite's own clean view) and the faulty proxy in front."""

    moto: ThreadedMotoServer
    proxy: FaultyProxy
    direct_url: str
    _buckets: list[str] = field(default_factory=list)

    def client(self) -> Any:
        """A boto3 client straight to moto (no faults): how the suite inspects what was published."""
        return S3Config(endpoint_url=self.direct_url, region="us-east-1",
                        addressing_style="path").client()

    def new_bucket(self, name: str) -> str:
        """A new, empty bucket named ``name-<random>``: moto servers in one process share their
        buckets, so a fixed name could hand an attack a bucket a test already wrote to."""
        unique = f"{name[:50]}-{uuid.uuid4().hex[:8]}"
        self.client().create_bucket(Bucket=unique)
        return unique


@contextlib.contextmanager
def s3_services(faults: FaultRates = S3_FAULTS) -> Iterator[S3Services]:
    """Start moto and the proxy; the parent's own AWS credentials are dummies for moto."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    for key, value in {"AWS_ACCESS_KEY_ID": "suite", "AWS_SECRET_ACCESS_KEY": "suite",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    direct = f"http://{host}:{port}"
    proxy = FaultyProxy(direct, FaultRates(**vars(faults))).start()
    try:
        yield S3Services(moto=moto, proxy=proxy, direct_url=direct)
    finally:
        proxy.stop()
        moto.stop()


def make_simulator(faulty: bool, seed: int = 0) -> Simulator:
    """A started in-process simulator; ``faulty`` applies ``FAULTS``, else only slow batches."""
    base = {"seed": seed, "batch_validating_s": 0.1, "batch_in_progress_s": 0.5,
            "batch_finalizing_s": 0.1}
    return Simulator(SimulatorConfig.model_validate(base | (FAULTS if faulty else {}))).start()


JUDGEFLOW_BIN = Path(sys.executable).with_name("judgeflow")
BUILD_LIMIT_S = 240.0  # an attack's build of a few rows takes seconds; this only bounds a hang


def run_build(config_path: Path, env: dict[str, str], log_dir: Path,
              limit_s: float = BUILD_LIMIT_S) -> tuple[int, float]:
    """``judgeflow run CONFIG`` with stdout and stderr in files under ``log_dir``; returns
    (exit code, seconds); 124 when it ran past ``limit_s``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with (log_dir / "stdout.txt").open("wb") as out, (log_dir / "stderr.txt").open("wb") as err:
        try:
            code = subprocess.run([str(JUDGEFLOW_BIN), "run", str(config_path)], env=env, cwd=REPO,
                                  stdout=out, stderr=err, timeout=limit_s, check=False).returncode
        except subprocess.TimeoutExpired:
            code = 124
    return code, time.monotonic() - started
