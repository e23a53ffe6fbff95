"""A config to start from: ``judgeflow init`` and the demo's short config, which runs again.

The last test is the whole loop a new user follows: ``judgeflow demo --serve`` in one process,
``judgeflow check`` and ``judgeflow run`` of the demo's config in others, with no Prefect banner
or missing-limit warning in the output.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from judgeflow.cli import app
from judgeflow.config import BuildConfig, load_config
from judgeflow.demo import (
    CONFIG_NAME,
    DEMO_KEY_ENV,
    FALLBACK_NAME,
    demo_config,
    serve_urls,
    short_config,
    write_demo_config,
)

SCRIPT = Path(sys.executable).parent / "judgeflow"


def _code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- judgeflow init -------------------------------------------------------------------------


def test_init_writes_a_short_commented_config_that_loads(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["init", str(tmp_path / "proj")])
    assert result.exit_code == 0, result.output
    path = tmp_path / "proj" / "config.yaml"
    text = path.read_text()
    config = load_config(path)
    assert config.input.uri and config.judges and config.output.dir
    assert len(_code_lines(text)) <= 25  # only what a user changes: input, judges, output
    data = yaml.safe_load(text)
    assert set(data) <= {"dataset", "input", "judges", "output"}
    assert "OPENAI_API_KEY" in "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert any(j.get("provider") and j.get("model") for j in data["judges"])  # by provider and model
    assert any(set(j) == {"name"} for j in data["judges"])  # and by registered name


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# my own config\n")
    result = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output and "Traceback" not in result.output
    assert path.read_text() == "# my own config\n"
    assert CliRunner().invoke(app, ["init", str(tmp_path), "--force"]).exit_code == 0
    assert "judges:" in path.read_text()


# --- the demo's config ----------------------------------------------------------------------


def _demo(out: Path) -> BuildConfig:
    return demo_config(**serve_urls(), out_dir=out)


def test_demo_config_is_short_and_means_the_same(tmp_path: Path) -> None:
    config = _demo(tmp_path)
    path, fallback = write_demo_config(config, tmp_path)
    assert path == tmp_path / CONFIG_NAME and not fallback
    text = path.read_text()
    assert load_config(path) == config  # nothing lost by leaving the defaults out
    assert len(_code_lines(text)) < 70  # it was ~150 lines of defaults
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert DEMO_KEY_ENV in comments and "judgeflow demo --serve" in comments and "judgeflow run" in comments
    assert "127.0.0.1:17801" in text and "127.0.0.1:17802" in text  # the fixed ports of --serve
    data = short_config(config)
    assert "consensus" not in data and "gpu" not in data and "generation" not in data  # all defaults
    for judge in data["judges"]:
        assert {"name", "provider", "model"} <= set(judge)
        assert "sampling" not in judge and "timeout_s" not in judge


def test_demo_never_overwrites_a_user_edited_config(tmp_path: Path) -> None:
    config = _demo(tmp_path)
    path, _ = write_demo_config(config, tmp_path)
    first = path.read_text()
    again, fallback = write_demo_config(config, tmp_path)  # unedited: the demo may refresh its own
    assert again == path and not fallback and path.read_text() == first
    path.write_text(first.replace("demo-preferences", "my-dataset"))
    other, fallback = write_demo_config(config, tmp_path)
    assert fallback and other == tmp_path / FALLBACK_NAME
    assert "my-dataset" in path.read_text()  # the user's edit survives
    assert other.read_text() == first


def test_the_demo_says_how_to_run_its_config_again(tmp_path: Path) -> None:
    from judgeflow.cli.run import _rerun_hint

    text = "\n".join(_rerun_hint(tmp_path / CONFIG_NAME, tmp_path))
    assert f"judgeflow demo --serve --out {tmp_path}" in text
    assert f"judgeflow run {tmp_path / CONFIG_NAME}" in text and DEMO_KEY_ENV in text


def test_demo_serve_on_a_busy_port_is_one_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["demo", "--serve", "--out", str(tmp_path), "--sim-port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"port {port}" in result.output and "--sim-port" in result.output and "Traceback" not in result.output


# --- the loop: serve, check, run ------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.timeout(600)
def test_demo_config_runs_again_against_demo_serve(tmp_path: Path) -> None:
    sim_port, s3_port = _free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREFECT_API_URL", DEMO_KEY_ENV))}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    out = tmp_path / "judgeflow-demo"
    serve = subprocess.Popen(
        [str(SCRIPT), "demo", "--serve", "--out", str(out), "--sim-port", str(sim_port), "--s3-port", str(s3_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = serve.stdout.readline() if serve.stdout else ""
            if not line:
                break
            lines.append(line)
            if "serving until Ctrl-C" in line:
                break
        assert any("serving until Ctrl-C" in line for line in lines), "".join(lines)
        export = next(line for line in lines if line.strip().startswith("export "))
        run_env = env | dict(item.split("=", 1) for item in export.split()[1:])
        config = out / "config.yaml"
        assert f"127.0.0.1:{sim_port}" in config.read_text()

        check = subprocess.run([str(SCRIPT), "check", str(config)], capture_output=True, text=True, env=run_env,
                               timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "0 failed" in check.stdout

        done = subprocess.run([str(SCRIPT), "run", str(config)], capture_output=True, text=True, env=run_env,
                              timeout=480)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "preflight:" in output and "judge gpt-batch: ok" in output and "published:" in output
        assert "verdicts come from judgeflow's simulator" in output  # honest about what judged
        for noise in ("temporary server", "docs.prefect.io", "View at ", "do not exist", "Traceback"):
            assert noise not in output, (noise, output)
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(10)
