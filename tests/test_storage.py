"""Local run directories: layout, atomic writes, manifest contents, secrets never written."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest
from pydantic import BaseModel, SecretStr

from judgeflow.storage.manifest import read_manifest, scrub_secrets, write_manifest
from judgeflow.storage.writer import atomic_write, run_dir, write_outputs


def _frames() -> dict[str, pl.DataFrame]:
    return {
        "rows": pl.DataFrame({"row_id": ["a", "b"], "instruction": ["x", "y"]}),
        "pairs": pl.DataFrame({"row_id": ["a"], "chosen": ["1"], "rejected": ["2"]}),
    }


def test_run_dir_layout_and_name_checks(tmp_path: Path) -> None:
    path = run_dir(tmp_path, "demo", "run-1", "2026-11-23")
    assert path == tmp_path / "demo" / "2026-11-23" / "run-1" and path.is_dir()
    with pytest.raises(ValueError):
        run_dir(tmp_path, "../escape", "run-1")
    with pytest.raises(ValueError):
        run_dir(tmp_path, "demo", "run-1", "23/11/2026")


def test_write_outputs_parquet_and_jsonl(tmp_path: Path) -> None:
    written = write_outputs(tmp_path, _frames(), jsonl=["pairs"])
    assert sorted(written) == ["pairs.jsonl", "pairs.parquet", "rows.parquet"]
    assert pl.read_parquet(written["rows.parquet"]).equals(_frames()["rows"])
    assert orjson.loads(written["pairs.jsonl"].read_bytes().splitlines()[0]) == {
        "row_id": "a", "chosen": "1", "rejected": "2",
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def explode(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


class _Cfg(BaseModel):
    dataset: str = "demo"
    api_key: SecretStr = SecretStr("sk-live-abcdefghijklmnop")
    api_key_env: str = "OPENAI_API_KEY"
    nested: dict = {"secret_access_key": "wJalrXUtnFEMI", "endpoint": "http://x", "token": "t0k"}
    stray: str = "sk-ant-api03-0123456789abcdef"


def test_manifest_contents_and_no_secrets(tmp_path: Path) -> None:
    directory = run_dir(tmp_path, "demo", "r1", "2026-11-23")
    write_outputs(directory, _frames())
    (directory / "judgments").mkdir()
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(directory / "judgments" / "part-00000.parquet")
    started = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    path = write_manifest(
        directory, dataset="demo", run_id="r1", date="2026-11-23", started_at=started,
        config=_Cfg(), counts={"rows_in": 2, "rows_valid": 2},
    )
    manifest = read_manifest(directory)
    assert manifest["dataset"] == "demo" and manifest["run_id"] == "r1"
    assert manifest["date"] == "2026-11-23"
    assert manifest["started_at"].startswith("2026-11-23T10:00:00")
    assert manifest["finished_at"] >= manifest["started_at"]
    assert manifest["counts"] == {"rows_in": 2, "rows_valid": 2}
    assert sorted(manifest["files"]) == ["judgments/part-00000.parquet", "pairs.parquet", "rows.parquet"]
    rows_file = directory / "rows.parquet"
    entry = manifest["files"]["rows.parquet"]
    assert entry["sha256"] == hashlib.sha256(rows_file.read_bytes()).hexdigest()
    assert entry["bytes"] == rows_file.stat().st_size and entry["rows"] == 2
    assert manifest["files"]["judgments/part-00000.parquet"]["rows"] == 3
    for package in ("judgeflow", "prefect", "polars", "openai", "anthropic", "boto3"):
        assert manifest["versions"][package]
    assert manifest["config"]["api_key_env"] == "OPENAI_API_KEY"
    assert manifest["config"]["nested"] == {"endpoint": "http://x"}
    text = path.read_text()
    for secret in ("sk-live-abcdefghijklmnop", "wJalrXUtnFEMI", "t0k", "sk-ant-api03"):
        assert secret not in text


def test_scrub_secrets_shapes() -> None:
    assert scrub_secrets({"password": "p", "list": [SecretStr("s"), "ok"], "n": 1}) == {
        "list": ["ok"], "n": 1,
    }


def test_manifest_names_each_file_by_a_content_address(tmp_path: Path) -> None:
    """Keys come from the files alone: same files, same keys (whatever the times); any change of
    content, a new version folder (docs/data.md, "Publishing to S3")."""
    directory = run_dir(tmp_path, "demo", "r1", "2026-11-23")
    write_outputs(directory, _frames())
    write_manifest(directory, dataset="demo", run_id="r1", date="2026-11-23", started_at=datetime.now(UTC))
    first = read_manifest(directory)
    lines = "".join(f"{name}\t{first['files'][name]['sha256']}\n" for name in sorted(first["files"]))
    assert first["content_digest"] == hashlib.sha256(lines.encode()).hexdigest()
    assert first["version"] == first["content_digest"][:16]
    assert {name: e["key"] for name, e in first["files"].items()} == {
        "pairs.parquet": f"v/{first['version']}/pairs.parquet",
        "rows.parquet": f"v/{first['version']}/rows.parquet",
    }
    write_manifest(directory, dataset="demo", run_id="r1", date="2026-11-23",
                   started_at=datetime(2030, 1, 1, tzinfo=UTC))
    again = read_manifest(directory)
    assert again["started_at"] != first["started_at"] and again["files"] == first["files"]
    write_outputs(directory, {"rows": pl.DataFrame({"row_id": ["a"], "instruction": ["changed"]})})
    write_manifest(directory, dataset="demo", run_id="r1", date="2026-11-23", started_at=datetime.now(UTC))
    changed = read_manifest(directory)
    assert changed["version"] != first["version"]
    assert changed["files"]["pairs.parquet"]["sha256"] == first["files"]["pairs.parquet"]["sha256"]
