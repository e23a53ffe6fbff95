"""The formats people have (issue 15 item 3): each builds rows with no column mapping.

UltraFeedback, preference pairs (plain strings, HH-RLHF transcripts, TRL's conversational
message lists, UltraFeedback-binarized), distilabel, OpenAI-style ``messages`` and judgeflow's own
``pairs.parquet``: recognised from the first rows or chosen with ``--format`` / ``input.format``.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from judgeflow.cli import app
from judgeflow.columns import ColumnMapping, InputError
from judgeflow.config import BuildConfig
from judgeflow.loading import load_rows
from judgeflow.schemas import PAIRS_SCHEMA, QUARANTINE_SCHEMA, ROWS_SCHEMA

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def _load(name: str, **kwargs):
    result = load_rows(DATA / name, **kwargs)
    assert result.rows.schema == pl.Schema(ROWS_SCHEMA)
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    c = result.counts
    assert c.rows_in == c.rows_valid + c.rows_quarantined
    return result


def _reasons(result) -> list[str]:
    return result.quarantine["reason"].to_list()


def test_ultrafeedback() -> None:
    result = _load("ultrafeedback.jsonl")
    assert result.dataset_format == "ultrafeedback"
    assert result.rows["instruction"].to_list() == ["Name three primary colours.", "Translate 'good morning' into French."]
    assert result.rows["responses"].to_list() == [
        ["Red and blue.", "Red, yellow and blue."],
        ["Bonjour.", "Good morning is 'bonjour' in French.", "Buenos dias."],
    ]
    assert result.rows["models"].to_list() == [["alpaca-7b", "gpt-4"], ["llama-2-7b-chat", "wizardlm-13b", "ultralm-65b"]]
    assert _reasons(result) == ["row 2: field 'completions' (responses) is an empty list"]


def test_ultrafeedback_with_the_column_mapping_the_issue_tried() -> None:
    """`--column responses=completions` (no --format) used to quarantine every row."""
    result = _load("ultrafeedback.jsonl", mapping=ColumnMapping(responses="completions"))
    assert result.counts.rows_valid == 2
    assert result.rows["responses"][0].to_list() == ["Red and blue.", "Red, yellow and blue."]


def test_preference_pairs_plain_strings() -> None:
    result = _load("preference_pairs.jsonl")
    assert result.dataset_format == "preference"
    assert result.rows["instruction"].to_list() == [
        "What is the boiling point of water at sea level?", "Give an antonym of 'ancient'."
    ]
    assert result.rows["responses"].to_list() == [["100 degrees Celsius.", "50 degrees Celsius."], ["Modern.", "Old."]]
    assert result.rows["models"].to_list() == [[None, None], [None, None]]
    assert _reasons(result) == ["row 2: field 'rejected' is empty"]


def test_preference_pairs_csv_keeps_ids() -> None:
    result = _load("preference_pairs.csv")
    assert result.dataset_format == "preference"
    assert result.rows["row_id"].to_list() == ["c1", "c2"]
    assert result.rows["responses"].to_list() == [["The bat.", "The penguin."], ["12", "7"]]


def test_hh_rlhf_transcripts() -> None:
    result = _load("hh_rlhf.jsonl")
    assert result.dataset_format == "preference"
    first, second = result.rows.to_dicts()
    assert first["instruction"] == "What is a good name for a goldfish?"
    assert first["responses"] == ["Bubbles is a classic choice.", "Fish do not need names."]
    # several turns: the dialogue so far is the instruction, the last assistant turns compete
    assert second["instruction"] == "Human: I want to bake bread.\n\nAssistant: Great! What kind?\n\nHuman: Sourdough."
    assert second["responses"] == ["You will need a starter, flour, water and salt.", "Buy it at a shop."]
    [reason] = _reasons(result)
    assert reason.startswith("row 2: field 'prompt' is missing")


def test_trl_conversational() -> None:
    result = _load("trl_conversational.jsonl")
    assert result.dataset_format == "preference"
    assert result.rows["instruction"].to_list() == ["What colour is the sky?", "Is 7 prime?"]
    assert result.rows["responses"].to_list() == [["Blue on a clear day.", "Green."], ["Yes, 7 is prime.", "No."]]
    assert _reasons(result) == ["row 2: field 'rejected' has no assistant message"]


def test_ultrafeedback_binarized_parquet() -> None:
    result = _load("ultrafeedback_binarized.parquet")
    assert result.dataset_format == "preference"
    assert result.rows["instruction"].to_list() == ["How many legs does a spider have?", "Suggest a name for a cat."]
    assert result.rows["responses"].to_list() == [["Eight.", "Six."], ["Whiskers.", "Rex the dog."]]
    assert result.counts.rows_quarantined == 0


def test_openai_messages() -> None:
    result = _load("messages.jsonl")
    assert result.dataset_format == "messages"
    assert result.rows["instruction"].to_list() == ["Capital of Italy?", "Name a fruit."]
    assert result.rows["responses"].to_list() == [["Rome."], ["Apple."]]
    assert _reasons(result) == ["row 2: field 'messages' has no assistant reply after the last user message"]


def test_distilabel_and_the_older_layouts_are_named() -> None:
    assert _load("distilabel.jsonl").dataset_format == "distilabel"
    assert _load("openpo.jsonl").dataset_format == "openpo"
    assert _load("native.jsonl").dataset_format == "judgeflow"
    assert _load("pairwise.csv").dataset_format == "pairwise"


def _pairs_frame() -> pl.DataFrame:
    """judgeflow's own pairs.parquet: two pairs from one row (strategy all-pairs), one from another."""
    rows = [
        ("r1", "Q1", "best", "mid", 0, 1, "m0", "m1", 5.0, 3.0),
        ("r1", "Q1", "best", "worst", 0, 2, "m0", "m2", 5.0, 1.0),
        ("r2", "Q2", "yes", "no", 1, 0, "m1", "m0", 4.0, 2.0),
    ]
    data = {name: [] for name in PAIRS_SCHEMA}
    for row_id, prompt, chosen, rejected, ci, ri, cm, rm, cs, rs in rows:
        values = {
            "row_id": row_id, "prompt": prompt, "chosen": chosen, "rejected": rejected, "chosen_index": ci,
            "rejected_index": ri, "chosen_model": cm, "rejected_model": rm, "chosen_score": cs,
            "rejected_score": rs, "margin": cs - rs, "agreement": 1.0, "judges": ["j"], "feedback": "f",
            "judge_models": ["gpt"], "template_hashes": ["t"], "run_id": "run",
        }
        for name in PAIRS_SCHEMA:
            data[name].append(values.get(name))
    return pl.DataFrame(data, schema=PAIRS_SCHEMA)


def test_own_pairs_parquet_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    _pairs_frame().write_parquet(path)
    result = load_rows(path)
    assert result.dataset_format == "preference"
    assert result.counts.rows_quarantined == 0  # two pairs of one row are two rows, not duplicates
    assert result.rows["responses"].to_list() == [["best", "mid"], ["best", "worst"], ["yes", "no"]]
    assert result.rows["models"].to_list() == [["m0", "m1"], ["m0", "m2"], ["m1", "m0"]]
    assert result.rows["row_id"].n_unique() == 3
    assert result.rows["row_id"].str.starts_with("r1").sum() == 2


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("ultrafeedback.jsonl", "ultrafeedback"), ("hh_rlhf.jsonl", "hh-rlhf"), ("trl_conversational.jsonl", "trl"),
     ("preference_pairs.jsonl", "preference"), ("messages.jsonl", "messages"), ("distilabel.jsonl", "distilabel")],
)
def test_stated_format_gives_the_same_rows(name: str, fmt: str) -> None:
    stated, detected = _load(name, format=fmt), _load(name)
    assert stated.rows.equals(detected.rows)
    assert stated.format == "jsonl"  # the file type still comes from the name


def test_a_stated_format_that_does_not_fit_names_flag_and_columns() -> None:
    with pytest.raises(InputError) as info:
        load_rows(DATA / "preference_pairs.jsonl", format="ultrafeedback")
    message = str(info.value)
    assert "--format ultrafeedback" in message and "input.format" in message
    assert "'completions'" in message and "'chosen'" in message


def test_unknown_format_lists_the_choices() -> None:
    with pytest.raises(InputError) as info:
        load_rows(DATA / "preference_pairs.jsonl", format="ultrafeedbak")
    message = str(info.value)
    assert "ultrafeedback" in message and "jsonl" in message and "preference" in message


def test_messages_name_flags_and_config_keys_not_python() -> None:
    with pytest.raises(InputError) as info:
        load_rows(DATA / "no_instruction.jsonl")
    message = str(info.value)
    assert "--column instruction=" in message and "input.columns" in message
    assert "ColumnMapping" not in message and "format=" not in message


def test_input_format_and_columns_are_config_keys() -> None:
    config = BuildConfig.model_validate(
        {"input": {"uri": "uf.jsonl", "format": "ultrafeedback", "columns": {"responses": "completions"}},
         "judges": ["prometheus-absolute"]}
    )
    assert config.input.format == "ultrafeedback"
    with pytest.raises(ValueError, match="respones"):
        BuildConfig.model_validate(
            {"input": {"uri": "x.jsonl", "columns": {"respones": "completions"}}, "judges": ["prometheus-absolute"]}
        )


# ------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("name", "fmt", "valid", "quarantined"),
    [("ultrafeedback.jsonl", "ultrafeedback", 2, 1), ("preference_pairs.jsonl", "preference", 2, 1),
     ("hh_rlhf.jsonl", "preference", 2, 1), ("trl_conversational.jsonl", "preference", 2, 1),
     ("messages.jsonl", "messages", 2, 1), ("distilabel.jsonl", "distilabel", 2, 0),
     ("ultrafeedback_binarized.parquet", "preference", 2, 0)],
)
def test_validate_reports_each_format(name: str, fmt: str, valid: int, quarantined: int) -> None:
    result = runner.invoke(app, ["validate", str(DATA / name), "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout.splitlines()[-1])
    assert summary["dataset_format"] == fmt
    assert (summary["rows_valid"], summary["rows_quarantined"]) == (valid, quarantined)
    assert f"{fmt} format" in result.stdout.splitlines()[0]


def test_validate_format_flag_and_its_errors() -> None:
    ok = runner.invoke(app, ["validate", str(DATA / "hh_rlhf.jsonl"), "--format", "hh-rlhf", "--json"])
    assert ok.exit_code == 0 and orjson.loads(ok.stdout.splitlines()[-1])["rows_valid"] == 2
    wrong = runner.invoke(app, ["validate", str(DATA / "hh_rlhf.jsonl"), "--format", "messages"])
    assert wrong.exit_code == 2 and "--format messages" in wrong.output and "Traceback" not in wrong.output
    column = runner.invoke(app, ["validate", str(DATA / "openpo.jsonl"), "--column", "respones=x"])
    assert column.exit_code == 2 and "--column respones=x" in column.output
    assert "did you mean 'responses'?" in column.output
    assert "ColumnMapping" not in column.output


def test_judges_render_reads_rows_as_loading_does(tmp_path: Path) -> None:
    row = tmp_path / "row.json"
    row.write_bytes(orjson.dumps({"prompt": "Is water wet?", "responses": ["Yes.", "No."]}, option=orjson.OPT_INDENT_2))
    result = runner.invoke(app, ["judges", "render", "prometheus-relative", "--row", str(row)])
    assert result.exit_code == 0, result.output
    assert "Is water wet?" in result.stdout and "Yes." in result.stdout and "No." in result.stdout
    pair = tmp_path / "pair.json"
    pair.write_bytes(orjson.dumps({"prompt": "Best pet?", "chosen": "A cat.", "rejected": "A rock."}))
    result = runner.invoke(app, ["judges", "render", "prometheus-relative", "--row", str(pair)])
    assert result.exit_code == 0 and "A cat." in result.stdout and "A rock." in result.stdout
    empty = tmp_path / "empty.json"
    empty.write_bytes(orjson.dumps({"prompt": " ", "responses": ["x"]}))
    result = runner.invoke(app, ["judges", "render", "prometheus-absolute", "--row", str(empty)])
    assert result.exit_code == 2 and "'prompt' (instruction) is empty" in result.output
    assert "Traceback" not in result.output


def test_config_format_choices_match_the_loader() -> None:
    from typing import get_args

    from judgeflow.config import InputConfig
    from judgeflow.formats import FORMAT_CHOICES

    literal = get_args(InputConfig.model_fields["format"].annotation)[0]
    assert set(get_args(literal)) == set(FORMAT_CHOICES)


def test_load_task_reports_the_dataset_format_and_no_private_column_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build's load step says which format it read, with the user's column names only."""
    import tasks.io as io_tasks

    lines: list[str] = []

    class Logger:
        def info(self, message: str, *args: object) -> None:
            lines.append(message % args)

        warning = info

    monkeypatch.setattr(io_tasks, "run_logger", lambda: Logger())
    for name, fmt in (("preference_pairs.jsonl", "preference"), ("messages.jsonl", "messages"),
                      ("ultrafeedback.jsonl", "ultrafeedback")):
        out = io_tasks.load_rows_task.fn(str(DATA / name), str(tmp_path / fmt))
        assert out["dataset_format"] == fmt
        assert not any(str(v).startswith("__jf") for v in out["columns"].values()), out["columns"]
        assert all(v is not None for v in out["columns"].values()), out["columns"]  # only columns read
        assert f"{fmt} format" in lines[-1] or any(f"{fmt} format" in line for line in lines), lines
    assert out["columns"]["responses"] == "completions"


def test_ultrafeedback_keeps_the_ratings_in_metadata() -> None:
    """Each completion's model, scores, annotations and critique, in response order (no texts)."""
    result = _load("ultrafeedback.jsonl")
    first = orjson.loads(result.rows["metadata"][0])
    source = orjson.loads((DATA / "ultrafeedback.jsonl").read_bytes().splitlines()[0])["completions"]
    assert [c["model"] for c in first["ratings"]] == ["alpaca-7b", "gpt-4"]
    for kept, original in zip(first["ratings"], source, strict=True):
        assert kept == {k: original[k] for k in ("model", "overall_score", "fine-grained_score", "annotations", "critique")}
    assert "response" not in result.rows["metadata"][0] and "custom_system_prompt" not in result.rows["metadata"][0]


def test_ultrafeedback_rows_with_their_own_metadata_keep_it(tmp_path: Path) -> None:
    row = orjson.loads((DATA / "ultrafeedback.jsonl").read_bytes().splitlines()[0])
    path = tmp_path / "uf.jsonl"
    path.write_bytes(orjson.dumps({**row, "metadata": {"split": "train"}}) + b"\n")
    result = _load(str(path))
    assert result.dataset_format == "ultrafeedback"
    assert orjson.loads(result.rows["metadata"][0]) == {"split": "train"}
