"""Deployments against a REAL Prefect server: pools, rate limits, `prefect deploy`, a worker run.

The offline checks (templates, Dockerfiles, default parameters) run first and take milliseconds.
The server checks share one ``prefect server start`` (tests/fixtures/prefect_server.py) and go
through the same CLI commands and client calls a person would use, in order: set up the pools,
deploy every deployment, read them back, then run the build through a process worker with the
judges on the provider simulator and publishing to a moto S3 server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from infra.local.params import deployment_entry, load_prefect_yaml, local_build_config, nightly_config
from infra.setup_pools import DEFAULT_CONFIG, load_spec
from judgeflow.config import BuildConfig
from judgeflow.specs import JudgeSpec
from tests.fixtures.prefect_server import PREFECT_BIN, REPO_ROOT, PrefectServer

pytestmark = pytest.mark.slow

PREFECT_YAML = REPO_ROOT / "deployments" / "prefect.yaml"
POOLS_DIR = REPO_ROOT / "infra" / "pools"
DOCKER_DIR = REPO_ROOT / "infra" / "docker"
DEPLOYMENTS = {"nightly-build", "build-local", "prometheus-vllm", "pairrm"}
SECRET_WORDS = re.compile(r"(api[_-]?key|secret|token|password|access[_-]?key)", re.I)


# --------------------------------------------------------------------------- offline checks


def _render(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What a worker does with a base job template: defaults, then overrides, then substitute."""
    from prefect.utilities.templating import apply_values

    props = template["variables"]["properties"]
    variables = {k: v["default"] for k, v in props.items() if "default" in v}
    variables.update(values)
    return apply_values(template["job_configuration"], variables)


def test_every_placeholder_in_a_pool_template_is_a_declared_variable() -> None:
    from prefect.utilities.templating import find_placeholders

    for path in sorted(POOLS_DIR.glob("*.json")):
        template = json.loads(path.read_text())
        declared = set(template["variables"]["properties"])
        used = {p.name for p in find_placeholders(template["job_configuration"])}
        assert used, path
        assert used <= declared, f"{path.name}: undeclared {used - declared}"


def test_gpu_template_wires_gpus_node_selector_and_tolerations() -> None:
    template = json.loads((POOLS_DIR / "kubernetes-gpu.json").read_text())
    for variable in ("gpu_count", "node_selector", "tolerations"):
        assert variable in template["variables"]["properties"]

    tolerations = [{"key": "gpu-a100", "operator": "Exists", "effect": "NoSchedule"}]
    job = _render(template, {"gpu_count": 4, "node_selector": {"pool": "a100"},
                             "tolerations": tolerations, "image": "judgeflow-gpu-vllm:test"})
    pod = job["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4  # an int, as Kubernetes wants
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 4
    assert pod["nodeSelector"] == {"pool": "a100"}
    assert pod["tolerations"] == tolerations
    assert container["image"] == "judgeflow-gpu-vllm:test"

    defaults = _render(template, {})["job_manifest"]["spec"]["template"]["spec"]
    assert defaults["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert defaults["tolerations"][0]["key"] == "nvidia.com/gpu"

    cpu = json.loads((POOLS_DIR / "kubernetes-cpu.json").read_text())
    assert "nvidia.com/gpu" not in json.dumps(cpu["job_configuration"])


def test_pools_yaml_matches_the_deployments() -> None:
    spec = load_spec(DEFAULT_CONFIG)
    queues = {p.name: {q.name for q in p.queues} for p in spec.work_pools}
    for entry in load_prefect_yaml()["deployments"]:
        pool = entry["work_pool"]
        assert pool["name"] in queues, entry["name"]
        assert pool["work_queue_name"] in queues[pool["name"]], entry["name"]
    assert {r.name for r in spec.rate_limits} == {"openai-rpm", "anthropic-rpm"}
    openai = next(r for r in spec.rate_limits if r.name == "openai-rpm")
    assert openai.slot_decay_per_second == pytest.approx(openai.rpm / 60)
    assert 1 <= openai.limit < openai.rpm  # a short burst, not a minute's worth at once


def test_nightly_defaults_are_a_complete_config_without_secrets() -> None:
    config = BuildConfig.model_validate(nightly_config())
    assert config.input.uri == "judgeflow/data/sample_rows.jsonl"
    assert config.output.publish_uri and config.output.publish_uri.startswith("s3://")
    assert len(config.judges) >= 2

    def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from walk(v, f"{path}[{i}]")
        else:
            yield path, value

    for entry in load_prefect_yaml()["deployments"]:
        for path, value in walk(entry.get("parameters", {})):
            leaf = path.rsplit(".", 1)[-1]
            if SECRET_WORDS.search(leaf) and value is not None:
                # only the NAME of a variable or block may appear, never a value
                assert leaf in ("api_key_env", "aws_credentials_block"), path
                assert re.fullmatch(r"[A-Z][A-Z0-9_]*|[a-z0-9-]+", str(value)), path
            assert not re.search(r"\bsk-[A-Za-z0-9]|AKIA[0-9A-Z]{12}", str(value)), path
        for spec in entry.get("parameters", {}).get("config", {}).get("judges", []):
            JudgeSpec.model_validate(spec)


def test_gpu_deployments_use_their_images_on_the_gpu_pool() -> None:
    images = {"prometheus-vllm": "judgeflow-gpu-vllm", "pairrm": "judgeflow-gpu-pairrm"}
    for name, image in images.items():
        entry = deployment_entry(name)
        assert entry["work_pool"]["name"] == "judgeflow-gpu"
        assert entry["work_pool"]["job_variables"]["image"].split(":")[0] == image
        assert entry["concurrency_limit"]["limit"] == 1
        JudgeSpec.model_validate(entry["parameters"]["spec"])
    nightly = deployment_entry("nightly-build")
    assert nightly["work_pool"]["name"] == "judgeflow-cpu"
    assert nightly["work_pool"]["job_variables"]["image"].startswith("judgeflow-cpu:")


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize(
    ("name", "extra", "cuda"),
    [("cpu", None, False), ("gpu-vllm", None, True), ("gpu-pairrm", "pairrm", True)],
)
def test_dockerfiles_copy_existing_files_and_install_the_right_extra(
    name: str, extra: str | None, cuda: bool
) -> None:
    path = DOCKER_DIR / f"{name}.Dockerfile"
    instructions = _dockerfile_instructions(path)
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert ("nvidia/cuda:" in froms[-1]) is cuda, froms
    copies = [rest.split() for word, rest in instructions if word == "COPY"]
    for args in copies:
        if any(a.startswith("--from=") for a in args):
            continue
        for source in args[:-1]:
            assert (REPO_ROOT / source).exists(), f"{path.name} copies missing {source}"
    installs = " ".join(rest for word, rest in instructions if word == "RUN" and "pip install" in rest)
    extras = set(re.findall(r"--extra (\S+)", installs))
    assert extras == ({extra} if extra else set()), extras
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    if extra:
        assert re.search(rf"^{extra} = \[", pyproject, re.M), f"pyproject has no [{extra}] extra"
    workdir = [rest for word, rest in instructions if word == "WORKDIR"][-1]
    pull_dir = load_prefect_yaml()["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert workdir == pull_dir["directory"], "image code dir must be where the pull step goes"
    assert [rest for word, rest in instructions if word == "USER"][-1] != "root"


def test_start_stack_script_is_valid_bash() -> None:
    for script in ("infra/local/start_stack.sh", "infra/setup_pools.sh"):
        proc = subprocess.run(["bash", "-n", str(REPO_ROOT / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- against a server


@contextmanager
def api(server: PrefectServer) -> Iterator[Any]:
    """A sync Prefect client for ``server`` (the test process's own settings untouched after)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        with get_client(sync_client=True) as client:
            yield client


@pytest.fixture(scope="module")
def deployed(prefect_server: PrefectServer) -> PrefectServer:
    """Pools + rate limits from infra/setup_pools.py, then `prefect deploy --all`."""
    import asyncio

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from infra.setup_pools import apply

    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "infra" / "setup_pools.py")],
        cwd=REPO_ROOT, env=prefect_server.env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "created work pool judgeflow-gpu (kubernetes)" in proc.stdout
    # A second run (in process, to save an interpreter start) must update, not fail on existing objects.
    lines: list[str] = []
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        asyncio.run(apply(load_spec(DEFAULT_CONFIG, {"anthropic-rpm": 600}), log=lines.append))
    assert "updated work pool judgeflow-gpu" in lines
    assert "updated rate limit anthropic-rpm: 50 slots, 10.00/s (~600 rpm)" in lines
    env = {k: v for k, v in prefect_server.env.items() if k != "JUDGEFLOW_PROJECT_DIR"}
    proc = subprocess.run(
        [str(PREFECT_BIN), "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return prefect_server


def test_pools_queues_and_rate_limits_exist(deployed: PrefectServer) -> None:
    with api(deployed) as client:
        gpu = client.read_work_pool("judgeflow-gpu")
        assert gpu.type == "kubernetes"
        assert gpu.concurrency_limit == 2
        container = gpu.base_job_template["job_configuration"]["job_manifest"]["spec"]["template"][
            "spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
        assert client.read_work_pool("judgeflow-local").type == "process"
        queues = {q.name: q for q in client.read_work_queues(work_pool_name="judgeflow-gpu")}
        assert queues["prometheus-vllm"].concurrency_limit == 1
        assert queues["prometheus-vllm"].priority < queues["default"].priority
        openai = client.read_global_concurrency_limit_by_name("openai-rpm")
        assert openai.limit == 375 and openai.slot_decay_per_second == pytest.approx(75.0)
        anthropic = client.read_global_concurrency_limit_by_name("anthropic-rpm")
        assert anthropic.slot_decay_per_second == pytest.approx(10.0)  # the --rpm override


def test_every_deployment_reads_back_with_schedule_pool_and_parameters(deployed: PrefectServer) -> None:
    expected = {e["name"]: e for e in load_prefect_yaml()["deployments"]}
    with api(deployed) as client:
        found = {d.name: d for d in client.read_deployments()}
        assert set(found) >= DEPLOYMENTS
        nightly = client.read_deployment_by_name("build-preference-dataset/nightly-build")
        assert nightly.id == found["nightly-build"].id
    for name in DEPLOYMENTS:
        dep, entry = found[name], expected[name]
        assert dep.entrypoint == entry["entrypoint"]
        assert dep.work_pool_name == entry["work_pool"]["name"]
        assert dep.work_queue_name == entry["work_pool"]["work_queue_name"]
        assert dep.parameters == entry["parameters"]
        assert dep.job_variables == (entry["work_pool"].get("job_variables") or {})
        assert dep.pull_steps, f"{name}: no pull step (the deploying machine's cwd would be baked in)"
        assert str(REPO_ROOT) not in json.dumps(dep.pull_steps), name
        assert dep.enforce_parameter_schema
    nightly = found["nightly-build"]
    assert len(nightly.schedules) == 1
    schedule = nightly.schedules[0]
    assert schedule.active
    assert schedule.schedule.cron == "30 2 * * *"
    assert schedule.schedule.timezone == "Europe/Berlin"
    assert nightly.global_concurrency_limit is not None
    assert nightly.global_concurrency_limit.limit == 1
    assert nightly.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert "config" in nightly.parameter_openapi_schema["properties"]
    assert found["build-local"].pull_steps[0]["prefect.deployments.steps.set_working_directory"] == {
        "directory": "{{ $JUDGEFLOW_PROJECT_DIR }}"
    }
    assert not found["build-local"].schedules
    for name in ("prometheus-vllm", "pairrm"):
        assert found[name].job_variables["gpu_count"] == 1


def test_api_key_comes_from_env_then_secret_block_and_is_never_logged(
    prefect_server: PrefectServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.secrets import resolve_api_key_with_source, secret_block_name

    spec = JudgeSpec(name="claude", kind="absolute", provider="anthropic", model="claude-haiku-4-5",
                     api_key_env="JF_TEST_ANTHROPIC_KEY")
    block_value = "sk-ant-block-" + os.urandom(6).hex()
    env_value = "sk-ant-env-" + os.urandom(6).hex()
    monkeypatch.delenv("JF_TEST_ANTHROPIC_KEY", raising=False)
    caplog.set_level("DEBUG")
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        assert resolve_api_key_with_source(spec) == (None, "none")
        Secret(value=block_value).save(secret_block_name("anthropic"), overwrite=True)
        assert resolve_api_key_with_source(spec) == (block_value, "block")
        monkeypatch.setenv("JF_TEST_ANTHROPIC_KEY", env_value)
        assert resolve_api_key_with_source(spec) == (env_value, "env")
    assert "judgeflow-anthropic-api-key" in caplog.text
    assert block_value not in caplog.text and env_value not in caplog.text


def _s3_keys(endpoint: str, bucket: str, prefix: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_nightly_build_runs_on_a_process_worker_and_publishes(
    deployed: PrefectServer, simulator: Any, s3_server: str, s3_bucket: str, tmp_path: Path
) -> None:
    """Trigger the build deployment with overridden parameters; a real worker runs it."""
    from prefect.client.schemas.objects import StateType

    sample = REPO_ROOT / "judgeflow" / "data" / "sample_rows.jsonl"
    assert sample.exists(), "the deployments' default input (bundled sample data) is missing"
    config = local_build_config(
        simulator.url, s3_server, s3_bucket, out_dir=str(tmp_path / "out"), prefix="nightly", limit=12,
    )
    with api(deployed) as client:
        deployment = client.read_deployment_by_name("build-preference-dataset/build-local")
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"config": config})

    worker_env = {
        **deployed.env,
        "JUDGEFLOW_PROJECT_DIR": str(REPO_ROOT),
        "OPENAI_API_KEY": "sim-key", "ANTHROPIC_API_KEY": "sim-key",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    worker = subprocess.run(
        [str(PREFECT_BIN), "worker", "start", "--pool", "judgeflow-local", "--type", "process",
         "--run-once", "--limit", "1"],
        cwd=tmp_path, env=worker_env, capture_output=True, text=True, timeout=180,
    )
    output = f"{worker.stdout[-6000:]}\n{worker.stderr[-6000:]}"
    assert worker.returncode == 0, output
    with api(deployed) as client:
        final = client.read_flow_run(run.id)
    assert final.state is not None
    assert final.state.type == StateType.COMPLETED, f"{final.state.type}: {final.state.message}\n{output}"
    assert final.parameters["config"]["output"]["publish_uri"] == f"s3://{s3_bucket}/nightly"

    keys = _s3_keys(s3_server, s3_bucket, "nightly/")
    manifests = [k for k in keys if k.endswith("manifest.json")]
    assert manifests, f"no manifest.json under s3://{s3_bucket}/nightly/: {keys}"
    assert any(k.endswith(".parquet") for k in keys), keys
    stats = simulator.stats()
    assert stats["chat_completions"] > 0 and stats["messages"] > 0, stats  # both judges ran
    assert stats["unauthorized"] == 0 and stats["duplicate_successes"] == 0, stats


def test_rate_limit_slots_refill_at_rpm_over_60(deployed: PrefectServer) -> None:
    """The GCLs setup_pools creates really throttle: a burst passes, the next slots wait."""
    import asyncio

    from prefect import get_client
    from prefect.concurrency.asyncio import rate_limit
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from infra.setup_pools import RateLimitSpec, apply_rate_limit

    probe = RateLimitSpec(name="probe-rpm", rpm=600, burst_seconds=5)  # 50 slots, 10 per second

    async def measure() -> tuple[float, float]:
        async with get_client() as client:
            await apply_rate_limit(client, probe, log=lambda _: None)
        start = time.monotonic()
        await rate_limit("probe-rpm", occupy=probe.limit, strict=True)
        burst = time.monotonic() - start
        await rate_limit("probe-rpm", occupy=10, strict=True)
        return burst, time.monotonic() - start

    with temporary_settings(updates={PREFECT_API_URL: deployed.api_url}):
        burst, total = asyncio.run(measure())
    assert total > 0.7  # 10 more slots need ~1 s of decay at 10 slots/s
    assert burst < total


# --------------------------------------------------------------------------- schedules that fire


def _runs_of(client: Any, deployment_id: Any, state: Any) -> list[Any]:
    """Runs of one deployment in one state (filtered on the server: a 10 s schedule makes 100)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state]))),
        limit=50)


def test_scheduler_creates_the_nightly_builds_upcoming_runs(deployed: PrefectServer) -> None:
    """Reading the cron back proves nothing (SQLAlchemy 2.1 stored it and never scheduled a run):
    the server's scheduler service must create the upcoming runs itself."""
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + 120
    with api(deployed) as client:
        nightly = client.read_deployment_by_name("build-preference-dataset/nightly-build")
        runs: list[Any] = []
        while time.monotonic() < deadline:
            runs = _runs_of(client, nightly.id, StateType.SCHEDULED)
            if len(runs) >= 3:
                break
            time.sleep(2)
    log = deployed.log_path.read_text()[-3000:]
    assert len(runs) >= 3, f"the scheduler created {len(runs)} nightly runs; server log:\n{log}"
    for run in runs:  # 02:30 Europe/Berlin, the cron in deployments/prefect.yaml
        local = run.expected_start_time.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute) == (2, 30), run.expected_start_time


def test_a_short_schedule_gets_a_run_completed_by_a_worker(deployed: PrefectServer, tmp_path: Path) -> None:
    """Scheduler -> scheduled run -> process worker -> Completed, with no manual trigger."""
    from datetime import timedelta

    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.schedules import IntervalSchedule

    with api(deployed) as client:
        flow_id = client.create_flow_from_name("scheduled-probe")
        deployment_id = client.create_deployment(
            flow_id=flow_id, name="every-10s", entrypoint="tests/probes/scheduled_probe.py:scheduled_probe",
            work_pool_name="judgeflow-local", work_queue_name="default",
            schedules=[DeploymentScheduleCreate(schedule=IntervalSchedule(interval=timedelta(seconds=10)))],
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}],
        )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [str(PREFECT_BIN), "worker", "start", "--pool", "judgeflow-local", "--type", "process",
             "--limit", "1"],
            cwd=tmp_path, env=deployed.env, stdout=log, stderr=subprocess.STDOUT)
    completed: list[Any] = []
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core box: a flow run process starts slowly
        with api(deployed) as client:
            while time.monotonic() < deadline and not completed:
                completed = _runs_of(client, deployment_id, StateType.COMPLETED)
                time.sleep(2)
            client.pause_deployment(deployment_id)  # stop feeding the shared test server
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
    assert completed, f"no scheduled run completed; worker log:\n{log_path.read_text()[-4000:]}"
    assert completed[0].auto_scheduled, "the run must come from the schedule, not a manual trigger"
