"""Loading: formats, column layouts, row ids, content-hash twin, unreadable files."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import polars as pl
import pytest

from judgeflow.columns import ColumnMapping, InputError
from judgeflow.loading import content_hashes, detect_format, load_rows
from judgeflow.schemas import QUARANTINE_SCHEMA, ROWS_SCHEMA, content_hash

DATA = Path(__file__).parent / "data"


def _check_shape(result) -> None:
    assert result.rows.schema == pl.Schema(ROWS_SCHEMA)
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    c = result.counts
    assert c.rows_in == c.rows_valid + c.rows_quarantined
    assert c.rows_valid == result.rows.height and c.rows_quarantined == result.quarantine.height


def test_native_jsonl_both_response_styles() -> None:
    result = load_rows(DATA / "native.jsonl")
    _check_shape(result)
    assert result.counts.rows_in == 3  # the blank line is not a row
    rows = {r["row_id"]: r for r in result.rows.to_dicts()}
    assert rows["n1"]["responses"] == ["Paris.", "Lyon."]
    assert rows["n1"]["models"] == ["gpt-4o-mini", "llama-3.1-8b"]
    assert rows["n1"]["reference"] == "Paris"
    assert orjson.loads(rows["n1"]["metadata"]) == {"topic": "geography"}
    assert rows["2"]["responses"] == ["5", "6", "five"]  # numeric id cast to string
    assert rows["2"]["models"] == ["claude-3-5-haiku", "mistral-7b", None]
    hashed = [r for r in rows if r not in ("n1", "2")]
    assert len(hashed) == 1
    row = rows[hashed[0]]
    assert row["row_id"] == content_hash("Say hello in Spanish.", ["Hola", "Bonjour"], None)
    assert row["source_index"] == 3  # physical line, blank line 2 counted
    assert row["models"] == [None, None]
    assert row["metadata"] == "{}"


def test_openpo_and_distilabel_layouts() -> None:
    openpo = load_rows(DATA / "openpo.jsonl")
    _check_shape(openpo)
    assert openpo.rows["instruction"].to_list() == ["What is 2+2?", "Translate 'cat' to German."]
    assert openpo.rows["reference"].to_list() == ["4", None]
    distil = load_rows(DATA / "distilabel.jsonl")
    _check_shape(distil)
    assert distil.counts.rows_valid == 2
    first = distil.rows.row(0, named=True)
    assert first["models"] == ["gpt-4o-mini", "mistral-7b"]
    assert first["reference"] == "any haiku"
    # generation_models wins over model_names (first alias found); row 2 lacks it -> nulls
    assert distil.rows.row(1, named=True)["models"] == [None, None]


def test_pairwise_csv() -> None:
    result = load_rows(DATA / "pairwise.csv")
    _check_shape(result)
    rows = {r["row_id"]: r for r in result.rows.to_dicts()}
    assert rows["p1"]["responses"] == ["Yes, on a clear day.", "No."]
    assert rows["p1"]["models"] == ["gpt-4o-mini", "llama-3.1-8b"]
    assert rows["p1"]["reference"] == "Yes"
    assert rows["p2"]["instruction"] == 'Give a synonym for "happy".'
    assert rows["p2"]["reference"] is None
    q = result.quarantine.row(0, named=True)
    assert q["row_id"] == "p3" and q["reason"] == "row 2: responses[1] is empty"
    assert q["source_index"] == 2  # data row index, header excluded, multi-line cell = one row


def test_csv_with_json_list_cells() -> None:
    result = load_rows(DATA / "responses_list.csv")
    _check_shape(result)
    assert result.rows["responses"].to_list() == [["red", "blue"]]
    assert result.rows["models"].to_list() == [["m1", "m2"]]
    assert result.quarantine["reason"].to_list() == ["row 1: field 'responses' must hold a JSON list"]


def test_parquet_roundtrip_with_struct_candidates(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "id": [10, 11, 12],
            "prompt": ["p0", "p1", ""],
            "responses": [
                [{"text": "a", "model": "m"}, {"text": "b", "model": None}],
                [{"text": "c", "model": "m"}, {"text": "d", "model": "n"}],
                [{"text": "e", "model": "m"}],
            ],
            "metadata": [{"k": 1}, {"k": 2}, {"k": 3}],
        }
    )
    path = tmp_path / "rows.parquet"
    frame.write_parquet(path)
    result = load_rows(path)
    _check_shape(result)
    assert result.rows["row_id"].to_list() == ["10", "11"]
    assert result.rows["responses"].to_list() == [["a", "b"], ["c", "d"]]
    assert result.rows["models"].to_list() == [["m", None], ["m", "n"]]
    assert orjson.loads(result.rows["metadata"][0]) == {"k": 1}
    assert result.quarantine["reason"].to_list() == ["row 2: field 'prompt' (instruction) is empty"]


def test_gzip_and_stated_format(tmp_path: Path) -> None:
    gz = tmp_path / "rows.jsonl.gz"
    gz.write_bytes(gzip.compress((DATA / "openpo.jsonl").read_bytes()))
    assert load_rows(gz).counts.rows_valid == 2
    odd = tmp_path / "rows.txt"
    odd.write_bytes((DATA / "openpo.jsonl").read_bytes())
    with pytest.raises(InputError, match="cannot tell the file type.*--format jsonl"):
        load_rows(odd)
    assert load_rows(odd, format="jsonl").counts.rows_valid == 2
    assert detect_format("s3://b/k/x.csv.gz") == ("csv", True)


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_bytes(orjson.dumps([{"instruction": "q", "responses": ["a", "b"]}]))
    result = load_rows(path)
    assert result.rows["responses"].to_list() == [["a", "b"]]


def test_explicit_mapping(tmp_path: Path) -> None:
    result = load_rows(
        DATA / "no_instruction.jsonl", mapping=ColumnMapping(instruction="question")
    )
    assert result.rows["instruction"].to_list() == ["What?", "Why?"]
    with pytest.raises(InputError, match=r"--column instruction=nope \(input.columns\)"):
        load_rows(DATA / "openpo.jsonl", mapping=ColumnMapping(instruction="nope"))


def test_unmappable_and_unreadable_raise_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_rows(DATA / "no_instruction.jsonl")
    message = str(info.value)
    assert "no_instruction.jsonl" in message and "'instruction'" in message and "'question'" in message
    with pytest.raises(InputError, match="cannot read"):
        load_rows(tmp_path / "missing.jsonl")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet")
    with pytest.raises(InputError, match="Parquet"):
        load_rows(junk)


def test_content_hash_twin_agrees_with_schemas() -> None:
    frame = pl.DataFrame(
        {
            "instruction": ["a", "é \"quoted\"", "x"],
            "responses": [["1", "2"], ["ü"], []],
            "reference": [None, "ref", ""],
        },
        schema={"instruction": pl.String, "responses": pl.List(pl.String), "reference": pl.String},
    )
    expected = [content_hash(i, r, ref) for i, r, ref in frame.iter_rows()]
    assert content_hashes(frame).to_list() == expected
    assert len(set(expected)) == 3


def test_large_file_loads_quickly(tmp_path: Path) -> None:
    """20k rows with one bad line in the middle: only that line is set aside."""
    import time

    lines = [
        orjson.dumps({"id": f"r{i}", "instruction": f"q{i}", "responses": [f"a{i}", f"b{i}"]})
        for i in range(20_000)
    ]
    lines[10_000] = b'{"id": "broken", '
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(lines))
    start = time.perf_counter()
    result = load_rows(path)
    elapsed = time.perf_counter() - start
    assert result.counts.rows_valid == 19_999 and result.counts.rows_quarantined == 1
    assert result.quarantine["source_index"].to_list() == [10_000]
    assert elapsed < 10, elapsed


def test_bundled_sample_rows() -> None:
    from judgeflow.data import sample_rows_path
    from judgeflow.data.make_sample_rows import render

    path = sample_rows_path()
    assert path.read_bytes() == render()  # the generator is deterministic and the file is current
    result = load_rows(path)
    _check_shape(result)
    assert result.counts.rows_in == 246
    assert result.counts.rows_valid == 240 and result.counts.rows_quarantined == 6
    assert set(result.quarantine["field"]) == {"instruction", "responses", "id", "line"}
    sizes = result.rows["responses"].list.len()
    assert sizes.min() == 2 and sizes.max() == 4
    assert result.rows["reference"].null_count() < 240 and result.rows["reference"].null_count() > 0
    models = set(result.rows["models"].explode().drop_nulls())
    assert {"gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-8b", "mistral-7b"} <= models
    assert result.rows["row_id"].n_unique() == 240


def test_own_rows_parquet_reloads_identically(tmp_path: Path) -> None:
    """judgeflow's rows.parquet (metadata as JSON text, row_id column) is itself a valid input."""
    first = load_rows(DATA / "native.jsonl")
    path = tmp_path / "rows.parquet"
    first.rows.write_parquet(path)
    again = load_rows(path)
    _check_shape(again)
    keep = ["row_id", "instruction", "responses", "models", "reference", "metadata", "content_hash"]
    assert again.rows.select(keep).equals(first.rows.select(keep))
