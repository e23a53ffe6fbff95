"""The CLI's error contract: a user's mistake is a few lines (what, where, how to fix) and exit 2
(usage, config, environment) or 1 (the build failed); never a traceback, unless ``--debug``.

Each mistake a new user makes in their first hour has its case here. The commands run in
process through typer's CliRunner (what ``judgeflow`` runs, minus the interpreter start); the
headline case, a config whose endpoint is dead, also runs as the real console script.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from judgeflow.cli import app
from judgeflow.simulator import Simulator

KEY_VAR = "JF_CLI_TEST_KEY"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def assert_user_error(result: Any, code: int, *fragments: str) -> None:
    """Exit ``code``, every fragment in the output, an ``error:`` line, and no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "error" in result.output.lower()
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    assert len(result.output.strip().splitlines()) <= 12, result.output  # a few lines, not a dump


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rows(path: Path) -> str:
    path.write_bytes(b"".join(
        orjson.dumps({"instruction": f"Q{i}?", "responses": [f"a{i}", f"b{i}"]}) + b"\n" for i in range(4)
    ))
    return str(path)


def config_file(tmp_path: Path, base_url: str, **sections: Any) -> Path:
    data: dict[str, Any] = {
        "input": {"uri": rows(tmp_path / "rows.jsonl")},
        "judges": [{"name": "grader", "provider": "openai-compatible", "model": "m", "base_url": base_url,
                    "api_key_env": KEY_VAR, "template": "prometheus", "rubric": "helpfulness"}],
        "output": {"dir": str(tmp_path / "out")},
    }
    data.update(sections)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, "sk-cli-test")


def test_missing_input_file(simulator: Simulator, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "rows.jsonl")
    config = config_file(tmp_path, simulator.openai_base_url, input={"uri": missing})
    assert_user_error(invoke("run", str(config)), 2, missing, "no such file", "input.uri")
    assert not (tmp_path / "out").exists()  # stopped before the build started


def test_s3_input_without_credentials(simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = config_file(tmp_path, simulator.openai_base_url, input={"uri": "s3://some-bucket/rows.jsonl"})
    assert_user_error(invoke("run", str(config)), 2, "s3://some-bucket/rows.jsonl", "no AWS credentials",
                      "AWS_ACCESS_KEY_ID")


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.parquet", "rows.csv"])
def test_binary_input_file(simulator: Simulator, tmp_path: Path, name: str) -> None:
    binary = tmp_path / "data" / name
    binary.parent.mkdir()
    binary.write_bytes(bytes(range(256)) * 64)
    config = config_file(tmp_path, simulator.openai_base_url, input={"uri": str(binary)})
    assert_user_error(invoke("run", str(config)), 2, str(binary), "input")


def test_template_typo(simulator: Simulator, tmp_path: Path) -> None:
    config = config_file(tmp_path, simulator.openai_base_url, judges=[{
        "name": "grader", "provider": "openai-compatible", "model": "m", "base_url": simulator.openai_base_url,
        "api_key_env": KEY_VAR, "template": "prometheus2",
    }])
    assert_user_error(invoke("run", str(config)), 2, "prometheus2", "did you mean prometheus", "judges[0].template")


def test_publish_override_without_credentials(simulator: Simulator, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = config_file(tmp_path, simulator.openai_base_url)
    result = invoke("run", str(config), "--set", "output.publish_uri=s3://my-bucket/datasets")
    assert_user_error(result, 2, "s3://my-bucket/datasets", "no AWS credentials", "AWS_ACCESS_KEY_ID")


def test_dead_endpoint_is_named_in_seconds(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = config_file(tmp_path, url)
    assert_user_error(invoke("run", str(config)), 2, url, "judges[0].base_url", "nothing was sent")


def test_dead_endpoint_through_the_console_script(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = config_file(tmp_path, url)
    script = Path(sys.executable).parent / "judgeflow"
    done = subprocess.run([str(script), "run", str(config)], capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert url in output and "Traceback" not in output and "APIConnectionError" not in output


def test_a_late_error_after_skip_check_shows_no_traceback(tmp_path: Path) -> None:
    """Past the preflight (``--skip-check``) the flow itself meets the mistake: Prefect's logs and
    judgeflow's message say it in lines, without a traceback (the real console script, Prefect's
    real logging)."""
    missing = str(tmp_path / "nowhere.jsonl")
    config = config_file(tmp_path, "http://127.0.0.1:9/v1", input={"uri": missing})
    script = Path(sys.executable).parent / "judgeflow"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([str(script), "run", str(config), "--skip-check"], capture_output=True, text=True,
                          timeout=300, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output and missing in output and "where: input.uri" in output
    assert "temporary server" not in output and "View at" not in output


def test_config_key_typo_names_the_key(simulator: Simulator, tmp_path: Path) -> None:
    config = config_file(tmp_path, simulator.openai_base_url, outptu={"dir": "x"})
    assert_user_error(invoke("run", str(config)), 2, "outptu", "unknown key", str(config))
    assert_user_error(invoke("check", str(config)), 2, "outptu")


def test_bad_set_override(simulator: Simulator, tmp_path: Path) -> None:
    config = config_file(tmp_path, simulator.openai_base_url)
    assert_user_error(invoke("run", str(config), "--set", "output.dir"), 2, "--set", "KEY=VALUE")
    assert_user_error(invoke("run", str(config), "--set", "chunk_size=-3"), 2, "chunk_size")


def test_simulate_on_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_user_error(invoke("simulate", "--port", str(port)), 2, f"127.0.0.1:{port}", "--port")


def test_simulate_on_a_negative_port() -> None:
    assert_user_error(invoke("simulate", "--port", "-1"), 2, "--port")


def test_demo_out_is_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    assert_user_error(invoke("demo", "--out", str(a_file)), 2, str(a_file), "--out", "not a folder")
    assert_user_error(invoke("demo", "--out", str(a_file / "sub")), 2, "--out")


def test_a_bug_is_one_line_and_debug_shows_the_traceback(
    simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import judgeflow.cli.check as check

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something internal broke")

    monkeypatch.setattr(check, "preflight", boom)
    config = config_file(tmp_path, simulator.openai_base_url)
    result = invoke("check", str(config))
    assert_user_error(result, 1, "RuntimeError", "something internal broke", "--debug")
    debug = invoke("--debug", "check", str(config))
    assert debug.exit_code == 1 and "Traceback" in debug.output and "something internal broke" in debug.output
    assert "Traceback" not in invoke("check", str(config)).output  # --debug does not stick


def test_help_shows_no_python_names_or_bool_types() -> None:
    for args in (["--help"], ["run", "--help"], ["check", "--help"], ["demo", "--help"], ["init", "--help"],
                 ["validate", "--help"], ["simulate", "--help"], ["judges", "--help"],
                 ["judges", "render", "--help"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output and "{" not in result.output, (args, result.output)
    assert "Usage: judgeflow run [OPTIONS] CONFIG" in invoke("run", "--help").output


def test_an_unknown_judge_name_is_a_config_error_with_the_closest(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"input": {"uri": rows(tmp_path / "rows.jsonl")},
                                      "judges": [{"name": "prometheus-absolut"}]}), encoding="utf-8")
    result = invoke("check", str(config))
    assert_user_error(result, 2, "prometheus-absolut", "prometheus-absolute", str(config))
    assert "judges: judges[0]" not in result.output  # the key is said once


def test_check_prints_every_check_and_exits_0(simulator: Simulator, tmp_path: Path) -> None:
    config = config_file(tmp_path, simulator.openai_base_url)
    result = invoke("check", str(config))
    assert result.exit_code == 0, result.output
    rows_shown = [line.split()[1] for line in result.output.splitlines() if line.startswith("  ok  ")]
    assert rows_shown[:2] == ["config", "judge"] and {"key", "endpoint", "input", "state"} <= set(rows_shown)
    assert "sk-cli-test" not in result.output  # keys are named, never shown


def _columns_file(tmp_path: Path, name: str) -> str:
    """Rows whose columns no alias finds (``question``/``answers``), in a file of ``name``."""
    path = tmp_path / name
    path.write_bytes(b"".join(
        orjson.dumps({"question": f"Q{i}?", "answers": [f"a{i}", f"b{i}"]}) + b"\n" for i in range(4)
    ))
    return str(path)


def _capture_build(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``run`` stops where the flow would start; the config it would build with is kept."""
    import typer

    import judgeflow.cli.run as run_module

    seen: list[Any] = []

    def fake_build(config: Any) -> Any:
        seen.append(config)
        raise typer.Exit(0)

    monkeypatch.setattr(run_module, "_build", fake_build)
    return seen


def test_run_takes_format_and_column_flags_like_validate(
    simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_build(monkeypatch)
    config = config_file(tmp_path, simulator.openai_base_url, input={"uri": _columns_file(tmp_path, "rows.data")})
    without = invoke("run", str(config))
    assert without.exit_code == 2 and not seen, without.output  # the preflight's input row fails
    result = invoke("run", str(config), "--format", "jsonl",
                    "--column", "instruction=question", "-c", "responses=answers")
    assert result.exit_code == 0, result.output
    assert seen[0].input.format == "jsonl"
    assert seen[0].input.columns == {"instruction": "question", "responses": "answers"}


def test_run_flags_override_the_config_keys(simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_build(monkeypatch)
    config = config_file(tmp_path, simulator.openai_base_url, input={
        "uri": _columns_file(tmp_path, "cols.jsonl"), "columns": {"instruction": "question", "responses": "nope"}})
    result = invoke("run", str(config), "--column", "responses=answers")
    assert result.exit_code == 0, result.output
    assert seen[0].input.columns == {"instruction": "question", "responses": "answers"}


def test_run_bad_column_and_format_flags_are_named(simulator: Simulator, tmp_path: Path) -> None:
    config = config_file(tmp_path, simulator.openai_base_url)
    assert_user_error(invoke("run", str(config), "--column", "instructoin=question"), 2,
                      "--column instructoin=question", "did you mean 'instruction'")
    assert_user_error(invoke("run", str(config), "--column", "instruction"), 2, "--column instruction", "FIELD=COLUMN")
    assert_user_error(invoke("run", str(config), "--format", "ultrafeedbak"), 2, "--format ultrafeedbak",
                      "ultrafeedback")


def test_input_error_is_a_user_error_with_where_and_fix() -> None:
    from judgeflow.columns import InputError
    from judgeflow.errors import ConfigError, explain

    error = InputError("rows.jsonl: cannot read")
    assert isinstance(error, ConfigError)
    assert str(error) == "rows.jsonl: cannot read"  # embedded in other messages as it always was
    assert explain(error) is error
    assert error.lines() == [
        "error: rows.jsonl: cannot read",
        "  where: input.uri",
        "  fix:   fix the file or input.columns; `judgeflow validate FILE` shows what it holds",
    ]


def test_explain_matches_no_judgeflow_class_by_name() -> None:
    from judgeflow.errors import explain

    class InputError(Exception):  # another library's class of the same name is not ours
        pass

    assert explain(InputError("x")) is None
