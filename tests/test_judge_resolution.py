"""A judge named in a config that matches a registered judge IS that judge (issue 15).

Every way in (a YAML build config, ``--set`` re-validation, the Prefect flow parameter, the Python
API, ``judgeflow judges list --config``) resolves a judges entry the same way: a registered name
starts from the registered spec with the entry's other keys as overrides; an unknown name without
``provider``/``model`` is an error naming the closest registered judges; a judge declared with
``provider``/``model`` under a new name is built as declared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from judgeflow.api import resolve_judges
from judgeflow.cli import app
from judgeflow.config import BuildConfig, load_config
from judgeflow.registry import JudgeRegistry, resolve_entry

runner = CliRunner()


def _config(*judges: Any) -> BuildConfig:
    return BuildConfig.model_validate({"input": {"uri": "rows.jsonl"}, "judges": list(judges)})


def _listed(config: Path | None = None) -> dict[str, dict[str, Any]]:
    """What `judgeflow judges list --json` shows, by name."""
    args = ["judges", "list", "--json"] + (["--config", str(config)] if config else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return {spec["name"]: spec for spec in orjson.loads(result.stdout)}


@pytest.mark.parametrize("name", ["prometheus-absolute", "prometheus-relative", "pairwise-preference"])
def test_a_name_alone_is_the_registered_judge(name: str) -> None:
    spec = _config({"name": name}).judges[0]
    assert spec == JudgeRegistry().get(name)
    assert spec.model_dump(mode="json") == _listed()[name]


def test_registered_prometheus_is_the_gpu_judge_not_the_api_default() -> None:
    spec = _config({"name": "prometheus-absolute"}).judges[0]
    assert (spec.provider, spec.mode, spec.model) == ("vllm", "gpu", "prometheus-eval/prometheus-7b-v2.0")
    assert spec.aggregation == ["average", "median"]


def test_a_bare_string_entry_is_a_registered_name() -> None:
    assert _config("prometheus-relative").judges[0] == JudgeRegistry().get("prometheus-relative")


def test_overrides_apply_on_top_of_the_registered_spec() -> None:
    spec = _config(
        {"name": "pairwise-preference", "model": "gpt-4o", "concurrency": 8, "rubric": "honesty",
         "api_key_env": "TEAM_OPENAI_KEY", "sampling": {"temperature": 0.0}}
    ).judges[0]
    registered = JudgeRegistry().get("pairwise-preference")
    assert (spec.model, spec.concurrency, spec.rubric, spec.api_key_env) == ("gpt-4o", 8, "honesty", "TEAM_OPENAI_KEY")
    assert (spec.kind, spec.template, spec.aggregation) == (registered.kind, registered.template, registered.aggregation)
    assert spec.sampling.temperature == 0.0
    assert spec.sampling.max_tokens == registered.sampling.max_tokens  # nested keys merge, not replace


def test_a_registered_gpu_judge_pointed_at_an_endpoint_runs_live() -> None:
    spec = _config(
        {"name": "prometheus-relative", "provider": "openai-compatible", "base_url": "http://gpu-box:8000/v1",
         "model": "prometheus-7b-v2.0", "api_key_env": "VLLM_KEY"}
    ).judges[0]
    assert (spec.provider, spec.mode, spec.base_url) == ("openai-compatible", "live", "http://gpu-box:8000/v1")
    assert spec.kind == "relative" and spec.aggregation == ["win_rate", "categorical_count"]


def test_a_misspelt_name_is_an_error_with_the_closest_names() -> None:
    with pytest.raises(ValidationError) as info:
        _config({"name": "prometheus-absolut"})
    message = str(info.value)
    assert "judges[0]" in message and "'prometheus-absolut'" in message
    assert "prometheus-absolute" in message
    assert "provider" in message and "model" in message  # how to declare a new judge instead
    assert "judgeflow judges list" in message


def test_an_unknown_name_with_overrides_but_no_provider_or_model_is_an_error() -> None:
    with pytest.raises(ValidationError, match=r"judges\[1\].*'house-grader'"):
        _config({"name": "prometheus-absolute"}, {"name": "house-grader", "rubric": "honesty"})


def test_a_new_judge_declared_with_provider_and_model_is_built_as_declared() -> None:
    spec = _config({"name": "house-grader", "provider": "anthropic", "model": "claude-3-5-haiku-latest"}).judges[0]
    assert (spec.name, spec.provider, spec.model, spec.kind, spec.template) == (
        "house-grader", "anthropic", "claude-3-5-haiku-latest", "absolute", "prometheus"
    )


def test_a_typo_in_an_override_key_names_the_key() -> None:
    with pytest.raises(ValidationError, match="modle"):
        _config({"name": "prometheus-absolute", "modle": "x"})


def test_yaml_config_and_set_overrides_resolve_the_same(tmp_path: Path) -> None:
    path = tmp_path / "build.yaml"
    path.write_text("input: {uri: rows.jsonl}\njudges:\n  - name: prometheus-absolute\n    rubric: honesty\n")
    config = load_config(path)
    assert config.judges[0].provider == "vllm" and config.judges[0].rubric == "honesty"
    # `--set` and Prefect re-validate the dumped config: resolution is idempotent
    assert BuildConfig.model_validate(config.model_dump(mode="json")) == config
    # `judgeflow judges list --config BUILD.yaml` shows what the build will run
    assert _listed(path)["prometheus-absolute"] == config.judges[0].model_dump(mode="json")


def test_registry_files_resolve_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "judges.yaml"
    path.write_text("- prometheus-relative\n- name: pairwise-preferense\n")
    result = runner.invoke(app, ["judges", "list", "--config", str(path)])
    assert result.exit_code == 2
    assert "pairwise-preference" in result.output and "Traceback" not in result.output
    path.write_text("- prometheus-relative\n")  # a bare registered name, as a build config allows
    assert _listed(path)["prometheus-relative"] == JudgeRegistry().get("prometheus-relative").model_dump(mode="json")


def test_python_api_resolves_the_same_way() -> None:
    assert resolve_judges([{"name": "prometheus-absolute", "concurrency": 4}])[0] == _config(
        {"name": "prometheus-absolute", "concurrency": 4}
    ).judges[0]
    with pytest.raises(ValueError, match="prometheus-relative"):
        resolve_judges([{"name": "prometheus-relativ"}])
    with pytest.raises(KeyError, match="closest: prometheus-relative"):
        resolve_judges(["prometheus-relativ"])


def test_prefect_flow_parameter_resolves_the_same_way() -> None:
    from flows.build import build_preference_dataset

    params = build_preference_dataset.validate_parameters(
        {"config": {"input": {"uri": "rows.jsonl"}, "judges": [{"name": "prometheus-absolute"}]}}
    )
    assert params["config"].judges[0] == JudgeRegistry().get("prometheus-absolute")


def test_resolve_entry_leaves_full_declarations_alone() -> None:
    declared = {"name": "mine", "provider": "openai", "model": "gpt-4o", "kind": "pairwise", "template": "pairwise-json"}
    assert resolve_entry(declared) == declared
