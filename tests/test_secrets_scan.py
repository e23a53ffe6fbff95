"""The reliability suite's secret scan sees through compression: a key inside a zstd Parquet
file (a judgment record's error column) or a gzip file is found, not just one in plain bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl

from benchmarks.reliability import secrets_scan

CANARY = "sk-canary-SCAN-TEST-1a2b3c4d5e6f-never-log"


def test_plain_gzip_and_zstd_parquet_leaks_are_all_found(tmp_path: Path) -> None:
    (tmp_path / "plain.log").write_text(f"error: {CANARY}\n")
    (tmp_path / "log.txt.gz").write_bytes(gzip.compress(f"HTTP 401: {CANARY}".encode() * 3))
    frame = pl.DataFrame({
        "request_id": [f"r{i}" for i in range(200)],
        "error": [f"HTTP 500: row {i}: the server had an error" for i in range(199)]
        + [f"HTTP 401: Incorrect API key provided: {CANARY}"],
        "nested": [{"tags": ["a", "b"], "note": "x"}] * 199 + [{"tags": ["z", CANARY], "note": "y"}],
    })
    # no statistics: they would hold a min/max string uncompressed in the footer
    frame.write_parquet(tmp_path / "part-00000.parquet", compression="zstd", statistics=False)
    # the key is invisible in the compressed bytes: only a decoding scan can find it
    assert CANARY.encode() not in (tmp_path / "part-00000.parquet").read_bytes()
    assert CANARY.encode() not in (tmp_path / "log.txt.gz").read_bytes()

    scanned, found = secrets_scan.scan_files([tmp_path], (CANARY,))
    assert scanned == 3
    assert sorted(Path(f.split(":")[0]).name for f in found) == ["log.txt.gz", "part-00000.parquet", "plain.log"]


def test_clean_files_and_unreadable_parquet(tmp_path: Path) -> None:
    pl.DataFrame({"error": ["HTTP 401: Incorrect API key provided: [redacted]"]}).write_parquet(
        tmp_path / "ok.parquet", compression="zstd")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1" + CANARY.encode() + b"garbage")  # not a real file
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b" + CANARY.encode())
    scanned, found = secrets_scan.scan_files([tmp_path], (CANARY,))
    assert scanned == 3
    # what cannot be decoded is still searched as raw bytes
    assert sorted(Path(f.split(":")[0]).name for f in found) == ["broken.gz", "broken.parquet"]


def test_bucket_objects_are_decoded_too() -> None:
    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self) -> bytes:
            return self.data

    import io

    buf = io.BytesIO()
    pl.DataFrame({"error": [CANARY]}).write_parquet(buf, compression="zstd")
    objects = {"ds/run/pairs.parquet": buf.getvalue(), "ds/run/pairs.jsonl.gz": gzip.compress(CANARY.encode())}

    class Client:
        def get_paginator(self, name: str) -> "Client":
            return self

        def paginate(self, Bucket: str) -> list[dict]:  # noqa: N803 - boto3's name
            return [{"Contents": [{"Key": k} for k in objects]}]

        def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 - boto3's name
            return {"Body": Body(objects[Key])}

    scanned, found = secrets_scan.scan_bucket(Client(), "b", (CANARY,))
    assert scanned == 2 and len(found) == 2
