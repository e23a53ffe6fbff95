"""Input files as people really have them: other encodings, byte-order marks, random bytes, empty.

Each goes through the real loader and through ``judgeflow validate`` (the CLI a user runs first):
UTF-16/UTF-32 files with a BOM are decoded, text in another encoding without one is named as
such, random bytes are "not JSON" with the file and the line, and an empty JSONL and an empty CSV
give the same outcome: zero rows and a note saying the file holds none. Binary files are made
here, not committed.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from judgeflow.cli import app
from judgeflow.columns import InputError
from judgeflow.loading import load_rows

ROWS = [
    {"id": "a", "prompt": "Quelle est la capitale ? ü", "responses": ["Paris", "Lyon"]},
    {"id": "b", "prompt": "What is 2+2? 😀", "responses": ["4", "5"]},
]
JSONL = "".join(orjson.dumps(r).decode() + "\n" for r in ROWS)
CSV = 'id,prompt,responses\na,"Quelle est la capitale ? ü","[""Paris"",""Lyon""]"\nb,What is 2+2? 😀,"[""4"",""5""]"\n'

ENCODED: dict[str, tuple[str, bytes]] = {
    # name: (codec Python decodes it with, BOM)
    "utf-8-sig": ("utf-8", b"\xef\xbb\xbf"),
    "utf-16-le": ("utf-16-le", b"\xff\xfe"),
    "utf-16-be": ("utf-16-be", b"\xfe\xff"),
    "utf-32-le": ("utf-32-le", b"\xff\xfe\x00\x00"),
    "utf-32-be": ("utf-32-be", b"\x00\x00\xfe\xff"),
}


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".jsonl.gz"])
@pytest.mark.parametrize("encoding", list(ENCODED))
def test_text_with_a_byte_order_mark_is_decoded(tmp_path: Path, encoding: str, suffix: str) -> None:
    codec, bom = ENCODED[encoding]
    text = CSV if suffix == ".csv" else JSONL
    data = bom + text.encode(codec)
    path = tmp_path / f"rows{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    result = load_rows(path)
    assert (result.counts.rows_in, result.counts.rows_valid) == (2, 2), result.quarantine.to_dicts()
    assert result.rows["instruction"].to_list() == [r["prompt"] for r in ROWS]
    assert result.rows["responses"].to_list() == [r["responses"] for r in ROWS]
    code, out = _cli("validate", str(path))
    assert code == 0 and "2 valid" in out, out
    if encoding != "utf-8-sig":
        assert encoding.split("-")[0].upper() + "-" + encoding.split("-")[1] in out, out  # says so


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_wide_text_without_a_bom_says_it_is_not_utf8(tmp_path: Path, codec: str, suffix: str) -> None:
    path = tmp_path / f"rows{suffix}"
    path.write_bytes((CSV if suffix == ".csv" else JSONL).encode(codec))
    with pytest.raises(InputError) as info:
        load_rows(path)
    message = str(info.value)
    assert str(path) in message and "UTF-8" in message and "UTF-16" in message, message
    code, out = _cli("validate", str(path))
    assert code == 2 and "Traceback" not in out and "UTF-8" in out, out


def test_a_bom_followed_by_bytes_that_do_not_decode_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\xff\xfe" + JSONL.encode("utf-16-le")[:-1])  # odd length: cut mid-character
    with pytest.raises(InputError, match=r"UTF-16") as info:
        load_rows(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_bytes_in_a_jsonl_file_are_not_json(tmp_path: Path, seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    if seed == 5:
        data = b"[" + data  # looks like a JSON array at first sight
    path = tmp_path / "rows.jsonl"
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        load_rows(path)
    message = str(info.value)
    assert str(path) in message and "not JSON" in message and "line " in message, message
    assert "\n" not in message
    code, out = _cli("validate", str(path))
    assert code == 2 and "Traceback" not in out and "not JSON" in out, out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out


def test_lines_that_are_json_but_no_object_say_so(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'"a string"\n[1, 2]\n')
    with pytest.raises(InputError, match=r"line 1 .*JSON object") as info:
        load_rows(path)
    assert str(path) in str(info.value)


def test_one_bad_line_among_good_ones_is_still_quarantined_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(JSONL.encode() + random.Random(7).randbytes(64).replace(b"\n", b" ") + b"\n")
    result = load_rows(path)
    assert (result.counts.rows_in, result.counts.rows_valid, result.counts.rows_quarantined) == (3, 2, 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_in_a_csv_file_are_one_clear_error(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(random.Random(seed).randbytes(4096))
    with pytest.raises(InputError) as info:
        load_rows(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    code, out = _cli("validate", str(path))
    assert code == 2 and "Traceback" not in out, out


EMPTY = {
    "empty.jsonl": b"",
    "empty.csv": b"",
    "blank-lines.jsonl": b"\n \n\r\n",
    "blank-lines.csv": b"\n\n",
    "bom-only.jsonl": b"\xef\xbb\xbf",
    "bom-only.csv": b"\xef\xbb\xbf",
    "utf16-bom-only.csv": b"\xff\xfe",
    "empty.jsonl.gz": gzip.compress(b""),
    "empty.csv.gz": gzip.compress(b""),
}


@pytest.mark.parametrize("name", list(EMPTY))
def test_empty_jsonl_and_csv_behave_alike(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(EMPTY[name])
    result = load_rows(path)
    assert (result.counts.rows_in, result.rows.height, result.quarantine.height) == (0, 0, 0)
    assert any("no rows" in note for note in result.notes), result.notes
    code, out = _cli("validate", str(path))
    assert code == 0 and "0 rows in" in out and "no rows" in out, out


def test_header_only_csv_is_zero_rows_too(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(b"prompt,responses\n")
    result = load_rows(path)
    assert result.counts.rows_in == 0 and any("no rows" in n for n in result.notes)


def test_validate_quarantine_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(JSONL.encode() + b"{bad\n")
    blocker = tmp_path / "taken"
    blocker.write_text("x", encoding="utf-8")
    code, out = _cli("validate", str(rows), "--quarantine", str(blocker / "q.parquet"))
    assert code == 2 and "Traceback" not in out and "quarantine" in out, out
