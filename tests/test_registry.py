"""Judge registry, config loading, aggregations and the `judgeflow judges` CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from judgeflow.aggregation import aggregate, aggregate_by_judge, average, categorical_count, median, win_rate
from judgeflow.cli import app
from judgeflow.judging.records import judgment_record, records_frame
from judgeflow.prompts.rubrics import HONESTY_RUBRIC
from judgeflow.registry import JudgeRegistry, load_specs
from judgeflow.specs import JudgeSpec

GOLDEN = Path(__file__).parent / "golden"
CASES: list[dict[str, Any]] = json.loads((GOLDEN / "cases.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------- registry


def test_builtins() -> None:
    registry = JudgeRegistry()
    assert registry.names() == ["prometheus-absolute", "prometheus-relative", "pairwise-preference"]
    assert registry.get("prometheus-absolute").kind == "absolute"
    assert registry.get("prometheus-absolute").template == "prometheus"
    assert registry.get("prometheus-relative").kind == "relative"
    assert registry.get("pairwise-preference").template == "pairwise-json"
    assert [s.name for s in registry.list()] == registry.names()
    assert len(JudgeRegistry(builtins=False)) == 0


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="known judges: prometheus-absolute, prometheus-relative, pairwise-preference"):
        JudgeRegistry().get("gpt-judge")
    with pytest.raises(KeyError, match=r"'pairwise-preferance' \(closest: pairwise-preference\)"):
        JudgeRegistry().get("pairwise-preferance")


def test_register_rejects_duplicates_unless_replacing() -> None:
    registry = JudgeRegistry()
    spec = JudgeSpec(name="mine", rubric="honesty")
    registry.register(spec)
    assert registry.get("mine") is spec and "mine" in registry
    with pytest.raises(ValueError, match="already registered"):
        registry.register(JudgeSpec(name="mine"))
    registry.register(JudgeSpec(name="mine", rubric="reasoning"), replace=True)
    assert registry.get("mine").rubric == "reasoning"


def test_from_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "judges.yaml"
    path.write_text(
        """
judges:
  - name: strict-gpt
    kind: pairwise
    template: pairwise-json
    model: gpt-4o
    rubric: factual-validity
  - name: concise
    model: gpt-4o-mini
    rubric:
      criteria: Is the response concise?
      score1_description: Rambling.
      score2_description: Long.
      score3_description: Padded.
      score4_description: Tight.
      score5_description: Perfect.
  - name: prometheus-absolute
    rubric: honesty
""",
        encoding="utf-8",
    )
    registry = JudgeRegistry.from_config(path)
    assert registry.names() == [
        "prometheus-absolute", "prometheus-relative", "pairwise-preference", "strict-gpt", "concise"
    ]
    assert registry.get("strict-gpt").model == "gpt-4o"
    assert registry.get("concise").rubric.startswith("[Is the response concise?]\nScore 1: Rambling.")
    replaced = registry.get("prometheus-absolute")
    assert replaced.rubric == "honesty"  # config overrides a built-in ...
    assert (replaced.provider, replaced.mode) == ("vllm", "gpu")  # ... starting from its spec


def test_from_json_file_and_list(tmp_path: Path) -> None:
    path = tmp_path / "judges.json"
    path.write_bytes(orjson.dumps([{"name": "j1", "kind": "relative", "model": "m"}]))
    assert JudgeRegistry.from_config(path).get("j1").kind == "relative"
    assert [s.name for s in load_specs([{"name": "a", "model": "m"}, {"name": "b", "provider": "anthropic"}])] == ["a", "b"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([{"name": "x", "model": "m", "tempature": 0.2}], r"judge #0 \('x'\): unknown key 'tempature' \(allowed keys: name, kind"),
        ([{"name": "x", "model": "m", "sampling": {"temp": 1}}], r"unknown key 'sampling.temp'"),
        ([{"name": "x", "model": "m", "kind": "ranking"}], r"kind: Input should be"),
        ([{"name": "x", "model": "m"}, {"name": "x", "model": "m"}], r"declared twice"),
        ([{"name": "x", "model": "m", "template": "custom", "custom_template": "{% if %}"}], r"custom_template does not compile"),
        ([{"name": "x", "model": "m", "template": "pairwise-json"}], r"compares two responses"),
        ([{"name": "x", "model": "m", "template": "custom", "custom_template": "{{ response }}",
          "score_regex": "("}],
         r"score_regex does not compile"),
        ([{"name": "x", "model": "m", "rubric": {"criteria": "c"}}], r"lacks 'score1_description'"),
        ({"judge": []}, r"'judges' list"),
        ([3], r"must be a mapping or a name"),
        (["x"], r"no registered judge is named 'x'"),
        ([{"name": "prometheus-absolut"}], r"judge #0 \('prometheus-absolut'\): no registered judge .*"
                                           r"did you mean 'prometheus-absolute'"),
        ([{"name": "x", "rubric": "honesty"}], r"give its provider and model"),
    ],
)
def test_config_errors_are_clear(config: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JudgeRegistry.from_config(config)


# ------------------------------------------------------------------------------ aggregation


def _frame(spec: JudgeSpec, items: list[dict[str, Any]]) -> Any:
    records = []
    for i, item in enumerate(items):
        request = {"request_id": f"q{i}", "row_id": f"r{i // 2}", "candidate_a": item["a"],
                   "candidate_b": item.get("b"), "order": item.get("order"), "content_hash": "h"}
        records.append(judgment_record(spec, request, score=item.get("score"), verdict=item.get("verdict"),
                                       error=item.get("error")))
    return records_frame(records)


def test_absolute_aggregations_return_numbers() -> None:
    spec = JudgeSpec(name="abs")
    frame = _frame(spec, [{"a": 0, "score": 5.0}, {"a": 1, "score": 2.0}, {"a": 0, "score": 4.0},
                          {"a": 1, "score": 4.0}, {"a": 0, "error": "no score"}])
    assert average(frame) == pytest.approx(3.75) and isinstance(average(frame), float)
    assert median(frame) == 4.0 and isinstance(median(frame), float)
    counts = categorical_count(frame)
    assert counts == {2: 1, 4: 2, 5: 1}
    assert all(isinstance(k, int) and isinstance(v, int) for k, v in counts.items())
    assert aggregate(frame.lazy(), ["average", "median"]) == {"average": 3.75, "median": 4.0}
    assert win_rate(frame) == {}


def test_pairwise_aggregations() -> None:
    spec = JudgeSpec(name="pw", kind="pairwise")
    frame = _frame(spec, [
        {"a": 0, "b": 1, "order": "AB", "verdict": "A"},  # 0 wins
        {"a": 1, "b": 0, "order": "BA", "verdict": "B"},  # 0 wins
        {"a": 0, "b": 2, "order": "AB", "verdict": "B"},  # 2 wins
        {"a": 2, "b": 0, "order": "BA", "verdict": "B", "error": "timeout"},  # failed: ignored
    ])
    assert win_rate(frame) == {0: pytest.approx(2 / 3), 1: 0.0, 2: 1.0}
    assert categorical_count(frame) == {"A": 1, "B": 2}
    assert average(frame) is None and median(frame) is None
    with pytest.raises(KeyError, match="known: average, median"):
        aggregate(frame, ["accuracy"])


def test_aggregate_by_judge_uses_registry_lists() -> None:
    registry = JudgeRegistry(builtins=False)
    abs_spec = registry.register(JudgeSpec(name="abs", aggregation=["average", "categorical_count"]))
    pw_spec = registry.register(JudgeSpec(name="pw", kind="pairwise", aggregation=["win_rate"]))
    frame = pl.concat([
        _frame(abs_spec, [{"a": 0, "score": 3.0}, {"a": 1, "score": 5.0}]),
        _frame(pw_spec, [{"a": 0, "b": 1, "order": "AB", "verdict": "B"}]),
    ])
    assert aggregate_by_judge(frame, registry.aggregations()) == {
        "abs": {"average": 4.0, "categorical_count": {3: 1, 5: 1}},
        "pw": {"win_rate": {0: 0.0, 1: 1.0}},
    }


# ---------------------------------------------------------------------------------------- CLI

runner = CliRunner()


def _row_file(tmp_path: Path, case: dict[str, Any]) -> Path:
    path = tmp_path / "row.json"
    path.write_bytes(orjson.dumps({k: case[k] for k in ("instruction", "responses", "reference")}))
    return path


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_cli_render_matches_golden(tmp_path: Path, case: dict[str, Any]) -> None:
    name = "prometheus-absolute" if case["kind"] == "absolute" else "prometheus-relative"
    rubric = case["rubric"] if isinstance(case["rubric"], str) else orjson.dumps(case["rubric"]).decode()
    args = ["judges", "render", name, "--row", str(_row_file(tmp_path, case)),
            "--option", f"rubric={rubric}", "--option", f"variant={case['variant']}", "--option", f"a={case['a']}"]
    if "b" in case:
        args += ["--option", f"b={case['b']}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == (GOLDEN / f"{case['name']}.user.txt").read_bytes().decode("utf-8")
    system = runner.invoke(app, [*args, "--system"])
    assert system.stdout == (GOLDEN / f"{case['name']}.system.txt").read_bytes().decode("utf-8")


def test_cli_render_reference_false_and_row_shapes(tmp_path: Path) -> None:
    row = tmp_path / "row.json"
    row.write_bytes(orjson.dumps({"instruction": "Q", "response_a": "x", "response_b": "y", "reference": "gold"}))
    with_ref = runner.invoke(app, ["judges", "render", "prometheus-relative", "--row", str(row)])
    assert "###Reference Answer:\ngold\n" in with_ref.stdout
    without = runner.invoke(app, ["judges", "render", "prometheus-relative", "--row", str(row), "-o", "reference=false"])
    assert "Reference Answer" not in without.stdout and "###Response B:\ny\n" in without.stdout
    single = tmp_path / "single.json"
    single.write_bytes(orjson.dumps({"instruction": "Q", "response": {"text": "only", "model": "m"}}))
    out = runner.invoke(app, ["judges", "render", "prometheus-absolute", "--row", str(single), "-o",
                              f"rubric={HONESTY_RUBRIC}"])
    assert out.exit_code == 0 and "###Response to evaluate:\nonly\n" in out.stdout and HONESTY_RUBRIC in out.stdout
    pairwise = runner.invoke(app, ["judges", "render", "pairwise-preference", "--row", str(row)])
    assert "<response_a>\nx\n</response_a>" in pairwise.stdout and pairwise.stdout.endswith('better.')


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-o", "b=5"], "out of range"),
        (["-o", "colour=red"], "expected KEY=VALUE"),
        (["-o", "reference=maybe"], "true or false"),
        (["-o", "variant=draft"], "variant"),
    ],
)
def test_cli_render_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    row = tmp_path / "row.json"
    row.write_bytes(orjson.dumps({"instruction": "Q", "responses": ["x", "y"]}))
    result = runner.invoke(app, ["judges", "render", "prometheus-relative", "--row", str(row), *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_unknown_judge(tmp_path: Path) -> None:
    row = tmp_path / "row.json"
    row.write_bytes(orjson.dumps({"instruction": "Q", "responses": ["x"]}))
    result = runner.invoke(app, ["judges", "render", "nope", "--row", str(row)])
    assert result.exit_code == 2 and "known judges: prometheus-absolute" in result.output


def test_cli_list_plain_json_and_config(tmp_path: Path) -> None:
    plain = runner.invoke(app, ["judges", "list"])
    assert plain.exit_code == 0
    assert plain.stdout.splitlines()[0].split() == ["NAME", "KIND", "TEMPLATE", "PROVIDER", "MODE", "MODEL", "RUBRIC"]
    config = tmp_path / "judges.yaml"
    config.write_text("- name: house-judge\n  model: gpt-4o\n  kind: pairwise\n  template: pairwise-json\n  api_key_env: MY_KEY\n")
    listed = runner.invoke(app, ["judges", "list", "--json", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    specs = orjson.loads(listed.stdout)
    assert [s["name"] for s in specs][-1] == "house-judge"
    assert specs[-1]["api_key_env"] == "MY_KEY"
    rendered = runner.invoke(app, ["judges", "render", "house-judge", "--config", str(config), "--row",
                                   str(_row_file(tmp_path, CASES[0]))])
    assert rendered.exit_code == 0 and "<instruction>\nExplain why the sky is blue" in rendered.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  model: m\n  temprature: 1\n")
    failed = runner.invoke(app, ["judges", "list", "--config", str(bad)])
    assert failed.exit_code == 2 and "unknown key 'temprature'" in failed.output
