"""Malformed rows, files and configs: each gives a clear message naming the row/field/key, and no
row is ever lost (``rows_in == rows_valid + rows_quarantined``; failed rows carry a reason).

Rows and files go through the real loader (``judgeflow.loading.load_rows``), configs through
``judgeflow.config.load_config`` (the same path as ``judgeflow run CONFIG.yaml``), the unreachable
endpoint through the real live judging path against a loopback port nobody listens on.
"""

from __future__ import annotations

import gzip
import io
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
import yaml
from pydantic import ValidationError

from judgeflow.api import judge, resolve_judges
from judgeflow.columns import InputError
from judgeflow.config import load_config
from judgeflow.loading import load_rows

GOOD = {"id": "good-1", "prompt": "Name a prime number.", "responses": ["7", "9"]}
GOOD2 = {"id": "good-2", "prompt": "Name an even number.", "responses": ["4", "5"]}

# ---------------------------------------------------------------------------------------------
# bad rows: (kind, the bad JSONL line, field named in quarantine, words the reason must contain)
# ---------------------------------------------------------------------------------------------
BAD_ROWS: list[tuple[str, bytes, str, tuple[str, ...]]] = [
    ("unparseable-json", b'{"id": "x", "prompt": "half a line', "line", ("json",)),
    ("not-an-object", b"[1, 2, 3]", "line", ()),
    ("bare-string", b'"just a string"', "line", ()),
    ("empty-instruction", orjson.dumps({"id": "x", "prompt": "   ", "responses": ["a", "b"]}),
     "instruction", ("instruction", "empty")),
    ("missing-instruction", orjson.dumps({"id": "x", "responses": ["a", "b"]}),
     "instruction", ("instruction", "missing")),
    ("null-instruction", orjson.dumps({"id": "x", "prompt": None, "responses": ["a", "b"]}),
     "instruction", ("instruction",)),
    ("instruction-wrong-type", orjson.dumps({"id": "x", "prompt": 42, "responses": ["a", "b"]}),
     "instruction", ("'prompt'", "string")),  # names the source column the user wrote
    ("missing-responses", orjson.dumps({"id": "x", "prompt": "Q?"}), "responses", ("responses", "missing")),
    ("empty-responses", orjson.dumps({"id": "x", "prompt": "Q?", "responses": []}),
     "responses", ("responses", "empty")),
    ("blank-response", orjson.dumps({"id": "x", "prompt": "Q?", "responses": ["a", ""]}),
     "responses", ("responses[1]", "empty")),
    ("responses-wrong-type", orjson.dumps({"id": "x", "prompt": "Q?", "responses": 12}),
     "responses", ("responses",)),
    ("response-not-text", orjson.dumps({"id": "x", "prompt": "Q?", "responses": [{"a": 1}, 3]}),
     "responses", ("responses",)),
    ("oversize-instruction", orjson.dumps({"id": "x", "prompt": "q" * 2_000, "responses": ["a", "b"]}),
     "instruction", ("instruction", "characters", "limit")),
    ("oversize-response", orjson.dumps({"id": "x", "prompt": "Q?", "responses": ["a", "r" * 2_000]}),
     "responses", ("characters", "limit")),
    ("duplicate-id", orjson.dumps(GOOD), "id", ("duplicate",)),
]


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(("kind", "line", "field", "words"), BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_bad_row_is_quarantined_with_a_clear_reason(
    tmp_path: Path, kind: str, line: bytes, field: str, words: tuple[str, ...]
) -> None:
    path = _write_lines(tmp_path / "rows.jsonl", [orjson.dumps(GOOD), line, orjson.dumps(GOOD2)])
    result = load_rows(path, max_text_chars=1_000)
    assert result.counts.rows_in == 3, kind  # nothing lost: every line is counted
    assert result.counts.rows_valid + result.counts.rows_quarantined == 3
    assert result.quarantine.height == 1, (kind, result.quarantine.to_dicts())
    bad = result.quarantine.row(0, named=True)
    assert bad["source_index"] == 1, bad  # names the line
    assert bad["field"] == field, bad  # names the field
    assert "row 1" in bad["reason"], bad
    for word in words:
        assert word.lower() in bad["reason"].lower(), (word, bad["reason"])
    assert sorted(result.rows["row_id"].to_list()) == ["good-1", "good-2"]  # the good rows survive


def test_invalid_utf8_is_quarantined_and_the_rest_kept(tmp_path: Path) -> None:
    bad = b'{"id": "x", "prompt": "caf\xe9 \xff\xfe", "responses": ["a", "b"]}'
    path = _write_lines(tmp_path / "rows.jsonl", [orjson.dumps(GOOD), bad, orjson.dumps(GOOD2)])
    result = load_rows(path)
    assert result.counts.rows_in == 3
    assert result.counts.rows_valid + result.counts.rows_quarantined == 3
    assert result.quarantine.height == 1
    reason = result.quarantine["reason"][0].lower()
    assert "row 1" in reason and "utf-8" in reason, reason


def test_binary_garbage_lines_are_each_quarantined(tmp_path: Path) -> None:
    garbage = [bytes([0, 159, 146, 150, 255, 10 + i]) for i in range(3)]
    path = _write_lines(tmp_path / "rows.jsonl", [orjson.dumps(GOOD), *garbage])
    result = load_rows(path)
    assert result.counts.rows_in == result.counts.rows_valid + result.counts.rows_quarantined
    assert result.counts.rows_valid == 1 and result.counts.rows_quarantined >= 1
    assert result.quarantine["reason"].null_count() == 0


# ---------------------------------------------------------------------------------------------
# bad files: one clear InputError naming the file
# ---------------------------------------------------------------------------------------------


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pl.DataFrame({"prompt": ["Q?"] * 50, "responses": [["a", "b"]] * 50}).write_parquet(buf)
    return buf.getvalue()


BAD_FILES: list[tuple[str, str, bytes | None, tuple[str, ...]]] = [
    ("missing-file", "nowhere.jsonl", None, ("cannot read",)),
    ("wrong-extension", "rows.txt", orjson.dumps(GOOD), ("format",)),
    ("unmappable-columns", "rows.jsonl", orjson.dumps({"foo": "bar", "baz": [1, 2]}), ("instruction",)),
    ("truncated-parquet", "rows.parquet", _parquet_bytes()[:200], ("parquet",)),
    ("garbage-parquet", "rows.parquet", bytes(range(256)) * 8, ("parquet",)),
    ("not-gzip", "rows.jsonl.gz", orjson.dumps(GOOD), ("gzip",)),
    ("csv-without-instruction", "rows.csv", b"a,b\n1,2\n", ("instruction",)),
]


@pytest.mark.parametrize(("kind", "name", "data", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_file_raises_one_clear_error(
    tmp_path: Path, kind: str, name: str, data: bytes | None, words: tuple[str, ...]
) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(InputError) as info:
        load_rows(path)
    message = str(info.value)
    assert str(path) in message or name in message, message  # names the file
    for word in words:
        assert word.lower() in message.lower(), (kind, message)


def test_empty_file_gives_zero_rows_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_bytes(b"")
    result = load_rows(tmp_path / "rows.jsonl")
    assert result.counts.rows_in == 0 and result.rows.height == 0 and result.quarantine.height == 0


def test_gzipped_jsonl_with_a_bad_line_keeps_every_row(tmp_path: Path) -> None:
    raw = b"\n".join([orjson.dumps(GOOD), b"{oops", orjson.dumps(GOOD2)]) + b"\n"
    (tmp_path / "rows.jsonl.gz").write_bytes(gzip.compress(raw))
    result = load_rows(tmp_path / "rows.jsonl.gz")
    assert (result.counts.rows_in, result.counts.rows_valid, result.counts.rows_quarantined) == (3, 2, 1)


# ---------------------------------------------------------------------------------------------
# bad configs: load_config names the key
# ---------------------------------------------------------------------------------------------

BASE_CONFIG: dict[str, Any] = {
    "input": {"uri": "rows.jsonl"},
    "judges": [{"name": "j1", "provider": "openai", "model": "gpt-4o-mini", "api_key_env": "K"}],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """BASE_CONFIG with ``a.b.0.c`` set to ``value`` (``...`` deletes it)."""
    data = orjson.loads(orjson.dumps(BASE_CONFIG))
    parts = path.split(".")
    target: Any = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    last = parts[-1]
    if value is ...:
        del target[last]
    elif last.isdigit():
        target[int(last):int(last) + 1] = [value]  # replace, or append at the end
    else:
        target[last] = value
    return data


BAD_CONFIGS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("unknown-top-level-key", _with("judgess", []), ("judgess",)),
    ("unknown-nested-key", _with("output.direcotry", "/x"), ("direcotry",)),
    ("unknown-judge-key", _with("judges.0.temprature", 0.5), ("temprature",)),
    ("wrong-type-chunk-size", _with("chunk_size", "lots"), ("chunk_size",)),
    ("wrong-type-judges", _with("judges", "gpt-4o"), ("judges",)),
    ("missing-input", _with("input", ...), ("input",)),
    ("missing-rubric", _with("judges.0.rubric", None), ("rubric",)),
    ("no-judges", _with("judges", []), ("judges",)),
    ("unknown-provider", _with("judges.0.provider", "openia"), ("provider",)),
    ("batch-without-batch-api", _with("judges.0", {"name": "v", "provider": "openai-compatible",
                                                   "mode": "batch", "model": "m"}), ("batch", "openai-compatible")),
    ("duplicate-judge-names", _with("judges.1", BASE_CONFIG["judges"][0]), ("unique", "j1")),
    ("negative-budget", _with("budget_usd", -5), ("budget_usd",)),
    ("zero-chunk-size", _with("chunk_size", 0), ("chunk_size",)),
    ("bad-dataset-name", _with("dataset", "../etc"), ("dataset",)),
    ("bad-judge-name", _with("judges.0.name", "has space"), ("name",)),
    ("custom-template-without-text", _with("judges.0.template", "custom"), ("custom_template",)),
]


@pytest.mark.parametrize(("kind", "data", "words"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_the_key(tmp_path: Path, kind: str, data: dict[str, Any], words: tuple[str, ...]) -> None:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises((ValueError, ValidationError)) as info:
        load_config(path)
    message = str(info.value)
    for word in words:
        assert word in message, (kind, message)


def test_config_that_is_not_yaml_or_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [unclosed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)
    with pytest.raises(ValueError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_the_cli_reports_a_bad_config_and_exits_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from judgeflow.cli import app

    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(_with("judges.0.temprature", 1)), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "temprature" in result.output


def test_unknown_judge_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        resolve_judges(["prometheus-absolut"])
    assert "prometheus-absolut" in str(info.value) and "prometheus-absolute" in str(info.value)


def test_empty_rubric_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(_with("judges.0.rubric", "  ")), encoding="utf-8")
    with pytest.raises((ValueError, ValidationError), match="rubric"):
        load_config(path)


# ---------------------------------------------------------------------------------------------
# an unreachable endpoint: rows end failed-with-reason, fast, never a hang
# ---------------------------------------------------------------------------------------------


def _dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: nobody listens there


@pytest.mark.timeout(120)
def test_unreachable_endpoint_fails_rows_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JF_DEAD_KEY", "sk-test-dead-endpoint-key")
    spec = {"name": "dead", "kind": "absolute", "provider": "openai-compatible", "mode": "live",
            "model": "m", "base_url": f"http://127.0.0.1:{_dead_port()}/v1", "api_key_env": "JF_DEAD_KEY",
            "timeout_s": 2, "max_retries": 1}
    started = time.monotonic()
    out = judge([GOOD, GOOD2], [spec], workdir=tmp_path / "w")
    assert time.monotonic() - started < 90
    assert out.height == 4  # 2 rows x 2 candidates: every request has a record
    assert (out["status"] == "error").all()  # the infrastructure's failure: asked again next run
    assert out["error"].null_count() == 0
    reasons = " ".join(out["error"].to_list()).lower()
    assert "connect" in reasons or "refused" in reasons, reasons
