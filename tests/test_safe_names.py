"""Names from a config become folder names and S3 key parts: none may climb out of ``output.dir``.

``run_id``, ``dataset``, judge and generator names are checked when the config is read (the same
rule for all: letters, digits, ``_``, ``.``, ``-``, not starting with ``.``), and the run's
folders are laid out only inside ``output.dir``. An ``output.dir`` that names a file is one clear
error, in the core, in the flow's first step and on the CLI.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from judgeflow.config import BuildConfig, load_config
from judgeflow.pipeline import run_paths
from judgeflow.specs import JudgeSpec

JUDGE = {"name": "j1", "provider": "openai", "model": "gpt-4o-mini", "api_key_env": "K"}
DAY = date(2026, 1, 2)


def _config(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input": {"uri": str(tmp_path / "rows.jsonl")},
        "judges": [dict(JUDGE)],
        "output": {"dir": str(tmp_path / "out")},
    }
    data.update(changes)
    return data


BAD_NAMES = ["../../../../x", "..", ".", ".hidden", "a/b", "a\\b", "", "x y", "ü", "a\x00b"]


@pytest.mark.parametrize("value", BAD_NAMES, ids=repr)
@pytest.mark.parametrize("field", ["run_id", "dataset"])
def test_run_id_and_dataset_reject_path_tricks(tmp_path: Path, field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        BuildConfig.model_validate(_config(tmp_path, **{field: value}))
    message = str(info.value)
    assert field in message, message  # names the field
    assert "letters, digits" in message, message  # says what is allowed


@pytest.mark.parametrize("value", BAD_NAMES, ids=repr)
def test_judge_name_rejects_path_tricks(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        JudgeSpec.model_validate({**JUDGE, "name": value})
    message = str(info.value)
    assert "name" in message and "letters, digits" in message, message


@pytest.mark.parametrize("value", ["..", "../up", ".x"], ids=repr)
def test_generator_name_rejects_path_tricks(tmp_path: Path, value: str) -> None:
    generation = {"enabled": True, "generators": [{"name": value, "model": "m"}]}
    with pytest.raises(ValidationError) as info:
        BuildConfig.model_validate(_config(tmp_path, generation=generation))
    assert "name" in str(info.value) and "letters, digits" in str(info.value)


@pytest.mark.parametrize("value", ["nightly-2026.01_a", "20260102-abcd1234-ef567890", "v1..2", "a"])
def test_ordinary_names_still_pass(tmp_path: Path, value: str) -> None:
    config = BuildConfig.model_validate(
        _config(tmp_path, run_id=value, dataset=value, judges=[{**JUDGE, "name": value}])
    )
    paths = run_paths(config, value, DAY)
    out = (tmp_path / "out").resolve()
    for folder in (paths.run_dir, paths.store_dir, paths.work_dir):
        assert folder.resolve().is_relative_to(out), folder
    assert paths.prefix == f"{value}/2026-01-02/{value}/"


def test_traversal_run_id_from_a_yaml_file_never_creates_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, run_id="../../../../escaped")), encoding="utf-8")
    with pytest.raises(ValidationError, match="run_id"):
        load_config(path)
    assert not any(p.name == "escaped" for p in tmp_path.parent.rglob("escaped"))


def test_run_paths_refuses_a_run_id_that_skipped_the_config(tmp_path: Path) -> None:
    """The core checks again: a run id handed to it directly (API, tasks) cannot escape either."""
    config = BuildConfig.model_validate(_config(tmp_path))
    with pytest.raises(ValueError, match="run_id"):
        run_paths(config, "../../escaped", DAY)
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


# ---------------------------------------------------------------------------------------------
# output.dir naming a file
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["is-a-file", "under-a-file"])
def test_output_dir_that_is_a_file_is_one_clear_error(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder", encoding="utf-8")
    out = blocker if where == "is-a-file" else blocker / "sub"
    config = BuildConfig.model_validate({**_config(tmp_path), "output": {"dir": str(out)}})
    with pytest.raises(ValueError) as info:
        run_paths(config, "r1", DAY)
    message = str(info.value)
    assert "output.dir" in message and str(blocker) in message and "not a folder" in message, message
    assert "\n" not in message
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_flow_first_step_reports_a_file_output_dir_clearly(tmp_path: Path) -> None:
    from flows.build import _ensure

    blocker = tmp_path / "taken"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match=r"output\.dir .*not a folder"):
        _ensure(blocker)


def test_cli_run_with_a_file_output_dir_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from judgeflow.cli import app

    blocker = tmp_path / "taken"
    blocker.write_text("x", encoding="utf-8")
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump({**_config(tmp_path), "output": {"dir": str(blocker)}}), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "output.dir" in lines[0] and "not a folder" in lines[0], result.output


def test_cli_run_with_a_traversal_run_id_exits_2_naming_the_field(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from judgeflow.cli import app

    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path)), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--set", "run_id=../../x"])
    assert result.exit_code == 2, result.output
    assert "run_id" in result.output and "Traceback" not in result.output
