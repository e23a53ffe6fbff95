"""Validation + quarantine: every kind of bad row, each quarantined once with a clear reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from judgeflow.loading import load_rows
from judgeflow.schemas import QUARANTINE_SCHEMA
from judgeflow.validation import reasons_by_field

DATA = Path(__file__).parent / "data"


def test_bad_rows_corpus() -> None:
    result = load_rows(DATA / "bad_rows.jsonl")
    assert result.counts.rows_in == 16
    assert result.counts.rows_valid == 2
    assert result.counts.rows_quarantined == 14
    assert result.rows["row_id"].to_list() == ["ok-1", "ok-2"]
    q = {r["source_index"]: r for r in result.quarantine.to_dicts()}
    assert len(q) == 14  # one entry per bad row: never double-counted
    expected = {
        1: ("line", "row 1: not valid JSON"),
        2: ("instruction", "row 2: field 'instruction' is empty"),
        3: ("instruction", "row 3: field 'instruction' is empty"),
        4: ("instruction", "row 4: field 'instruction' is missing"),
        5: ("instruction", "row 5: field 'instruction' must be a string"),
        6: ("instruction", "row 6: field 'instruction' must be a string"),
        7: ("responses", "row 7: field 'responses' is missing"),
        8: ("responses", "row 8: field 'responses' is an empty list"),
        9: ("responses", "row 9: field 'responses' must be a list"),
        10: ("responses", "row 10: field 'responses' must be a list of strings or of {text, model} objects"),
        11: ("responses", "row 11: responses[1] is empty"),
        12: ("id", "row 12: duplicate id 'ok-1' (first seen at row 0)"),
        13: ("instruction", "row 13: field 'instruction' is empty"),  # first of two problems
        14: ("line", "row 14: not a JSON object"),
    }
    assert {k: (v["field"], v["reason"]) for k, v in q.items()} == expected
    assert q[12]["row_id"] == "ok-1" and q[1]["row_id"] is None
    assert q[5]["raw"] == '{"id": "num-instr", "instruction": 42, "responses": ["a", "b"]}'
    assert result.quarantine["source"].unique().to_list() == [str(DATA / "bad_rows.jsonl")]


def test_invalid_utf8_quarantines_only_that_line(tmp_path: Path) -> None:
    good = orjson.dumps({"instruction": "fine", "responses": ["a", "b"]})
    bad = b'{"instruction": "caf\xe9 latin-1", "responses": ["a", "b"]}'
    also_bad = b'{"instruction": "x\xff\xfe", "responses": ["a", "c"]}'
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([good, bad, good.replace(b"fine", b"fine 2"), also_bad]) + b"\n")
    result = load_rows(path)
    assert result.counts.rows_valid == 2 and result.counts.rows_quarantined == 2
    assert result.quarantine["source_index"].to_list() == [1, 3]
    assert set(result.quarantine["field"]) == {"line"}
    assert all("invalid UTF-8" in r for r in result.quarantine["reason"])
    assert "caf" in result.quarantine["raw"][0]


def test_invalid_utf8_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(b'instruction,response_a,response_b\nok,a,b\n"caf\xe9",a,b\n')
    result = load_rows(path)
    assert result.counts.rows_valid == 1
    assert result.quarantine["source_index"].to_list() == [1]
    assert "invalid UTF-8" in result.quarantine["reason"][0]


def test_oversize_fields(tmp_path: Path) -> None:
    rows = [
        {"id": "small", "instruction": "q", "responses": ["a", "b"]},
        {"id": "big-instr", "instruction": "x" * 101, "responses": ["a", "b"]},
        {"id": "big-resp", "instruction": "q", "responses": ["a", "y" * 150]},
        {"id": "big-ref", "instruction": "q", "responses": ["a", "b"], "reference": "z" * 101},
    ]
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    result = load_rows(path, max_text_chars=100)
    assert result.rows["row_id"].to_list() == ["small"]
    reasons = result.quarantine["reason"].to_list()
    assert reasons == [
        "row 1: field 'instruction' has 101 characters (limit 100)",
        "row 2: a response has 150 characters (limit 100)",
        "row 3: field 'reference' has 101 characters (limit 100)",
    ]
    assert load_rows(path).counts.rows_valid == 4  # default limit 100,000


def test_duplicate_of_a_quarantined_row_is_kept(tmp_path: Path) -> None:
    """The first *valid* occurrence of an id is kept, even if an earlier one was invalid."""
    rows = [
        {"id": "d", "instruction": "", "responses": ["a"]},
        {"id": "d", "instruction": "second", "responses": ["a"]},
        {"id": "d", "instruction": "third", "responses": ["a"]},
    ]
    path = tmp_path / "dups.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    result = load_rows(path)
    assert result.rows["instruction"].to_list() == ["second"]
    assert result.quarantine["reason"].to_list() == [
        "row 0: field 'instruction' is empty",
        "row 2: duplicate id 'd' (first seen at row 1)",
    ]


def test_duplicate_content_without_ids(tmp_path: Path) -> None:
    row = orjson.dumps({"instruction": "same", "responses": ["a", "b"]})
    path = tmp_path / "same.jsonl"
    path.write_bytes(row + b"\n" + row)
    result = load_rows(path)
    assert result.counts.rows_valid == 1
    assert "duplicate id" in result.quarantine["reason"][0]


def test_nested_key_with_other_type_is_not_mistaken(tmp_path: Path) -> None:
    """A nested ``instruction`` number must not make the top-level string look wrong, and vice versa."""
    rows = [
        {"instruction": "top", "responses": ["a", "b"], "metadata": {"instruction": 5}},
        {"instruction": 7, "responses": ["a", "b"], "metadata": {"instruction": "nested"}},
    ]
    path = tmp_path / "nested.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    result = load_rows(path)
    assert result.rows["instruction"].to_list() == ["top"]
    assert result.quarantine["reason"].to_list() == ["row 1: field 'instruction' must be a string"]


def test_wrong_types_in_candidates_and_models(tmp_path: Path) -> None:
    rows = [
        {"instruction": "q", "responses": [{"text": 5}, {"text": "b"}]},
        {"instruction": "q", "responses": [{"text": "a"}, "b"]},
        {"instruction": "q", "responses": ["a", "b"], "models": ["m"]},
        {"instruction": "q", "responses": ["a", "b"], "models": [1, 2]},
        {"instruction": "q", "responses": ["a", "b"], "metadata": "text"},
        {"id": ["x"], "instruction": "q", "responses": ["a", "b"]},
    ]
    path = tmp_path / "types.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    result = load_rows(path)
    assert result.counts.rows_valid == 0
    assert result.quarantine.select("field").to_series().to_list() == [
        "responses", "responses", "models", "models", "metadata", "id",
    ]
    assert "has 1 entries but there are 2 responses" in result.quarantine["reason"][2]


def test_raw_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"instruction": "' + b"x" * 5000 + b'", "responses": 3}')
    result = load_rows(path)
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    assert len(result.quarantine["raw"][0]) == 2000


def test_reasons_by_field() -> None:
    result = load_rows(DATA / "bad_rows.jsonl")
    counts = reasons_by_field(result.quarantine)
    assert counts == {"instruction": 6, "responses": 5, "line": 2, "id": 1}
    assert sum(counts.values()) == result.counts.rows_quarantined


# ---------------------------------------------------------------------------------------------
# judgeflow validate
# ---------------------------------------------------------------------------------------------


def _cli(*args: str):
    from typer.testing import CliRunner

    from judgeflow.cli import app

    return CliRunner().invoke(app, ["validate", *args])


def test_cli_validate_json_summary_and_quarantine_file(tmp_path: Path) -> None:
    out = tmp_path / "q.parquet"
    result = _cli(str(DATA / "bad_rows.jsonl"), "--json", "--quarantine", str(out))
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output.strip().splitlines()[-1])
    assert (summary["rows_in"], summary["rows_valid"], summary["rows_quarantined"]) == (16, 2, 14)
    assert summary["reasons_by_field"] == {"instruction": 6, "responses": 5, "line": 2, "id": 1}
    assert "row 1: not valid JSON" in result.output
    assert pl.read_parquet(out).height == 14


def test_cli_validate_options(tmp_path: Path) -> None:
    result = _cli(str(DATA / "no_instruction.jsonl"), "--column", "instruction=question", "--json")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output.strip().splitlines()[-1])["rows_valid"] == 2
    big = tmp_path / "rows.txt"
    big.write_bytes(orjson.dumps({"instruction": "x" * 50, "responses": ["a", "b"]}))
    result = _cli(str(big), "--format", "jsonl", "--max-text-chars", "10", "--json",
                  "--quarantine", str(tmp_path / "q.jsonl"))
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output.strip().splitlines()[-1])["rows_quarantined"] == 1
    assert "limit 10" in (tmp_path / "q.jsonl").read_text()


def test_cli_validate_unreadable_file_fails_with_one_message(tmp_path: Path) -> None:
    result = _cli(str(DATA / "no_instruction.jsonl"))
    assert result.exit_code == 2
    assert "no instruction column" in result.output and "Traceback" not in result.output
    missing = _cli(str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "cannot read" in missing.output
