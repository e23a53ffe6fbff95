"""The out-of-process vLLM runner and the Prefect bridge to it, on CPU with the stand-in engine.

vLLM and Prefect 3.8 cannot share an environment (fastapi pins), so the Prometheus chunk task
starts ``python -m judgeflow.gpu.vllm_runner`` under ``JUDGEFLOW_VLLM_PYTHON``. Here that
interpreter is the test's own, with prefect made unimportable where it matters, and the engine
is the stand-in (``tests.stand_ins.vllm_engine``) or one of the factories below.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from packaging.requirements import Requirement

from judgeflow.gpu.vllm_runner import (
    EXIT_INFRASTRUCTURE,
    RUNNER,
    RunnerCrashed,
    RunnerFailed,
    run_out_of_process,
    runner_environment,
)
from judgeflow.judging.records import read_judgments
from judgeflow.specs import JudgeSpec, expand_requests
from tests.stand_ins.rows import rows_frame

REPO = Path(__file__).resolve().parents[1]
FACTORY = "tests.stand_ins.vllm_engine:make_engine"
PID_FACTORY = "tests.test_gpu_vllm_runner:pid_recording_engine"
PID_FILE_ENV = "JUDGEFLOW_TEST_ENGINE_PID_FILE"
BLOCKED = ("prefect", "typer", "fastapi")
MODEL = "prometheus-eval/prometheus-7b-v2.0"


# --- engine factories the runner subprocess imports by "module:callable" -----------------------

def pid_recording_engine(model: str, settings: Any) -> Any:
    """The stand-in engine, noting which process started it (one line per engine start)."""
    from tests.stand_ins.vllm_engine import make_engine

    with open(os.environ[PID_FILE_ENV], "ab") as fh:
        fh.write(orjson.dumps({"pid": os.getpid(), "argv": sys.argv}) + b"\n")
    return make_engine(model, settings)


def unreachable_hub_engine(model: str, settings: Any) -> Any:
    raise ConnectionError("model hub unreachable")


def oom_killed_engine(model: str, settings: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


# --- helpers ---------------------------------------------------------------------------------

def _spec(**overrides: Any) -> JudgeSpec:
    return JudgeSpec(**{"name": "prom-gpu", "provider": "vllm", "mode": "gpu", "model": MODEL, **overrides})


def _files(tmp_path: Path, spec: JudgeSpec) -> tuple[str, str, str, pl.DataFrame]:
    rows = rows_frame()
    requests = expand_requests(rows, spec)
    rows_path, requests_path, spec_path = tmp_path / "rows.parquet", tmp_path / "requests.parquet", tmp_path / "spec.json"
    rows.write_parquet(rows_path)
    requests.write_parquet(requests_path)
    spec_path.write_bytes(orjson.dumps(spec.model_dump(mode="json")))
    return str(spec_path), str(rows_path), str(requests_path), requests


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGEFLOW_VLLM")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return {**env, **extra}


def _run_without_prefect(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m judgeflow.gpu.vllm_runner ARGS`` with prefect, typer and fastapi unimportable."""
    blocker = "import runpy, sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in BLOCKED)
    blocker += f"sys.argv = [{RUNNER!r}, *sys.argv[1:]]\nrunpy.run_module({RUNNER!r}, run_name='__main__')\n"
    return subprocess.run([sys.executable, "-c", blocker, *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _summary(stdout: str) -> dict[str, Any]:
    last = stdout.strip().splitlines()[-1]
    data = orjson.loads(last)
    assert data["runner"] == RUNNER
    return data


# --- the runner on its own -------------------------------------------------------------------

def test_runner_judges_without_prefect_regenerates_and_resumes(tmp_path: Path) -> None:
    spec = _spec()
    spec_path, rows_path, requests_path, requests = _files(tmp_path, spec)
    out = tmp_path / "out"
    args = ["--spec", spec_path, "--rows", rows_path, "--requests", requests_path, "--out", str(out),
            "--engine-options", orjson.dumps({"factory": FACTORY, "max_model_len": 4096}).decode()]
    first = _run_without_prefect(args, _env())
    assert first.returncode == 0, first.stderr
    summary = _summary(first.stdout)
    assert summary | {"requests": 7, "ok": 7, "failed": 0, "skipped": 0, "rounds": 2, "generate_calls": 2} == summary
    got = read_judgments(str(out)).collect()
    assert sorted(got["request_id"]) == sorted(requests["request_id"])
    assert got["score"].is_between(1, 5).all()
    assert got.filter(pl.col("attempts") > 1).height == 1  # the "No idea" row, re-generated once
    assert "1 of 7 replies unparseable" in first.stderr  # the judge's own log line, on stderr

    again = _run_without_prefect(args, _env())
    assert again.returncode == 0, again.stderr
    assert _summary(again.stdout) | {"requests": 0, "skipped": 7} == _summary(again.stdout)
    assert read_judgments(str(out)).collect().height == 7


def test_runner_slices_and_takes_the_factory_from_the_environment(tmp_path: Path) -> None:
    spec = _spec()
    spec_path, rows_path, requests_path, requests = _files(tmp_path, spec)
    out = tmp_path / "out"
    result = _run_without_prefect(
        ["--spec", spec_path, "--rows", rows_path, "--requests", requests_path, "--out", str(out),
         "--offset", "2", "--length", "3"],
        _env(JUDGEFLOW_VLLM_ENGINE_FACTORY=FACTORY),
    )
    assert result.returncode == 0, result.stderr
    assert _summary(result.stdout)["requests"] == 3
    got = read_judgments(str(out)).collect()
    assert sorted(got["request_id"]) == sorted(requests["request_id"][2:5])


def test_runner_exit_codes(tmp_path: Path) -> None:
    spec_path, rows_path, requests_path, _ = _files(tmp_path, _spec(model=JudgeSpec.model_fields["model"].default))
    base = ["--rows", rows_path, "--requests", requests_path, "--out", str(tmp_path / "out"),
            "--engine-options", orjson.dumps({"factory": FACTORY}).decode()]
    missing = _run_without_prefect(["--spec", str(tmp_path / "nope.json"), *base], _env())
    assert missing.returncode == 2 and "bad input" in missing.stderr and missing.stdout == ""
    api_model = _run_without_prefect(["--spec", spec_path, *base], _env())
    assert api_model.returncode == 1 and "set model to a checkpoint" in api_model.stderr
    assert api_model.stdout == ""  # no summary line for a failed chunk


# --- the bridge (plain function: what the Prefect task calls) ----------------------------------

def test_bridge_streams_lines_and_classifies_failures(tmp_path: Path) -> None:
    spec = _spec()
    _, rows_path, requests_path, _ = _files(tmp_path, spec)
    lines: list[tuple[int, str]] = []
    summary = run_out_of_process(
        sys.executable, spec, rows_path, requests_path, str(tmp_path / "out"), offset=0, length=7,
        engine_options={"factory": FACTORY}, on_line=lambda level, line: lines.append((level, line)), env=_env(),
    )
    assert summary | {"requests": 7, "ok": 7, "skipped": 0} == summary and "runner" not in summary
    text = [line for _, line in lines]
    assert any("1 of 7 replies unparseable" in line for line in text)
    assert not any(line.startswith('{"runner"') for line in text)  # the summary is not a log line

    with pytest.raises(RunnerCrashed, match=f"exit {EXIT_INFRASTRUCTURE}.*\n.*model hub unreachable") as crashed:
        run_out_of_process(sys.executable, spec, rows_path, requests_path, str(tmp_path / "o2"),
                           engine_options={"factory": "tests.test_gpu_vllm_runner:unreachable_hub_engine"},
                           env=_env())
    assert isinstance(crashed.value, OSError)  # what the chunk task's retry condition retries
    with pytest.raises(RunnerCrashed, match="killed by signal 9"):
        run_out_of_process(sys.executable, spec, rows_path, requests_path, str(tmp_path / "o3"),
                           engine_options={"factory": "tests.test_gpu_vllm_runner:oom_killed_engine"}, env=_env())
    with pytest.raises(RunnerFailed, match="exited 1") as failed:
        run_out_of_process(sys.executable, spec, rows_path, requests_path, str(tmp_path / "o4"),
                           engine_options={"factory": "no_such_module:make"}, env=_env())
    assert not isinstance(failed.value, OSError)
    assert any("No module named 'no_such_module'" in line for line in failed.value.tail)


def test_runner_environment_puts_the_vllm_env_first(tmp_path: Path) -> None:
    venv = tmp_path / "vllm-env"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    base = {"PATH": "/opt/prefect-env/bin:/usr/bin", "VIRTUAL_ENV": "/opt/prefect-env", "HF_TOKEN": "x"}
    env = runner_environment(str(venv / "bin" / "python"), base)
    assert env["PATH"] == f"{venv / 'bin'}:/opt/prefect-env/bin:/usr/bin"
    assert env["VIRTUAL_ENV"] == str(venv) and env["PYTHONUNBUFFERED"] == "1"
    assert env["HF_TOKEN"] == "x"  # credentials travel in the environment, not on argv
    assert runner_environment("python3", base)["PATH"] == base["PATH"]  # a bare name: left alone


# --- the Prefect flow through the bridge -------------------------------------------------------

@pytest.mark.prefect
def test_flow_runs_chunks_in_the_vllm_python_and_resumes(
    prefect_harness: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.gpu_judges import prometheus_vllm_judge

    pid_file = tmp_path / "engine-pids.txt"
    for key, value in _env(JUDGEFLOW_VLLM_PYTHON=sys.executable, **{PID_FILE_ENV: str(pid_file)}).items():
        monkeypatch.setenv(key, value)
    spec = _spec()
    _, rows_path, requests_path, requests = _files(tmp_path, spec)
    out_dir = str(tmp_path / "out")
    params = {"spec": spec.model_dump(mode="json"), "rows_path": rows_path, "requests_path": requests_path,
              "out_dir": out_dir, "chunk_size": 3, "engine": {"factory": PID_FACTORY, "max_model_len": 4096}}
    task_logger, seen = logging.getLogger("prefect.task_runs"), _Records()
    task_logger.addHandler(seen)  # Prefect's run loggers do not propagate to pytest's caplog
    try:
        summary = prometheus_vllm_judge(**params)
    finally:
        task_logger.removeHandler(seen)
    assert summary | {"requests": 7, "ok": 7, "failed": 0, "skipped": 0, "chunks": 3} == summary
    got = read_judgments(out_dir).collect()
    assert sorted(got["request_id"]) == sorted(requests["request_id"])
    assert got.filter(pl.col("attempts") > 1).height == 1  # re-generated inside the runner
    forwarded = [r.getMessage() for r in seen.records if r.getMessage().startswith("[vllm] ")]
    assert any("replies unparseable" in m for m in forwarded)  # the runner's log, in the task's log
    starts = [orjson.loads(line) for line in pid_file.read_text().splitlines()]
    pids = {start["pid"] for start in starts}
    assert len(pids) == 3 and os.getpid() not in pids  # one runner process per chunk, none here
    for start in starts:  # engine options (and any secret in them) travel in a file, not on argv
        argv = " ".join(start["argv"])
        assert "4096" not in argv and PID_FACTORY not in argv and "--engine-options @" in argv

    again = prometheus_vllm_judge(**params)
    assert again | {"requests": 0, "skipped": 7, "chunks": 3} == again
    assert len(pid_file.read_text().splitlines()) == 3  # resumed: no engine started for finished chunks
    assert read_judgments(out_dir).collect().height == 7


@pytest.mark.prefect
def test_flow_fails_with_the_runner_output_tail(
    prefect_harness: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.gpu_judges import prometheus_vllm_judge

    for key, value in _env(JUDGEFLOW_VLLM_PYTHON=sys.executable).items():
        monkeypatch.setenv(key, value)
    spec = _spec(model=JudgeSpec.model_fields["model"].default)
    _, rows_path, requests_path, _ = _files(tmp_path, spec)
    with pytest.raises(RunnerFailed, match="set model to a checkpoint"):
        prometheus_vllm_judge(spec.model_dump(mode="json"), rows_path, requests_path, str(tmp_path / "o"),
                              engine={"factory": FACTORY})


# --- the vLLM environment stays free of Prefect ----------------------------------------------

def _requirement_names(path: Path) -> dict[str, Requirement]:
    reqs = [Requirement(line.split("#", 1)[0].strip()) for line in path.read_text().splitlines()
            if line.split("#", 1)[0].strip()]
    return {r.name.lower(): r for r in reqs}


def test_vllm_engine_requirements_name_no_orchestration_and_keep_the_core() -> None:
    engine = _requirement_names(REPO / "infra/requirements/vllm-engine.txt")
    assert not set(engine) & {"prefect", "prefect-aws", "typer", "fastapi"}
    assert engine["vllm"].specifier.contains("0.32.0") and not engine["vllm"].specifier.contains("0.34.0")
    core = {Requirement(d).name.lower() for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    # sqlalchemy is pinned only for Prefect's server (its scheduler breaks on 2.1): orchestration too
    assert core - {"prefect", "prefect-aws", "typer", "fastapi", "sqlalchemy"} <= set(engine)  # the rest of the core


def test_runner_import_pulls_in_no_prefect() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import sys, judgeflow.gpu.vllm_runner; print(sorted({m.split('.')[0] for m in sys.modules}))"],
        capture_output=True, text=True, env=_env(), cwd=REPO, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    imported = set(orjson.loads(result.stdout.replace("'", '"')))
    assert "judgeflow" in imported and "polars" in imported
    assert not imported & {"prefect", "typer", "fastapi", "vllm", "torch"}
    timed = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "judgeflow" in timed and not timed & set(BLOCKED)


def test_gpu_vllm_image_builds_two_environments() -> None:
    text = re.sub(r"\\\n", " ", (REPO / "infra/docker/gpu-vllm.Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    runs = " ".join(line for line in lines if line.startswith("RUN "))
    envs = " ".join(line for line in lines if line.startswith("ENV "))
    prefect_py, vllm_py = "--python /opt/prefect-env/bin/python", "--python /opt/vllm-env/bin/python"
    assert f"{prefect_py} -r pyproject.toml" in runs and f"{prefect_py} --no-deps ." in runs
    assert f"{vllm_py} -r infra/requirements/vllm-engine.txt" in runs and f"{vllm_py} --no-deps ." in runs
    assert "--extra vllm" not in runs  # judgeflow[vllm] cannot resolve next to prefect
    assert "JUDGEFLOW_VLLM_PYTHON=/opt/vllm-env/bin/python" in envs
    assert "PATH=/opt/prefect-env/bin:" in envs  # the worker's `prefect` is the Prefect env's
    assert "COPY infra/requirements/vllm-engine.txt" in "\n".join(lines)
