"""Publishing run dirs to S3 (moto server over HTTP) and loading inputs from s3:// URIs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from judgeflow.loading import load_rows
from judgeflow.storage.manifest import write_manifest
from judgeflow.storage.s3 import (
    MANIFEST_NAME,
    PublishError,
    S3Config,
    download,
    is_transient_s3_error,
    list_keys,
    publish_run,
    read_bytes,
)
from judgeflow.storage.writer import run_dir

DATA = Path(__file__).parent / "data"


def _make_run(root: Path, *, big: int = 0) -> Path:
    directory = run_dir(root, "demo", "run-7", "2026-11-23")
    pl.DataFrame({"blob": [os.urandom(64).hex() for _ in range(32)]}).write_parquet(
        directory / "rows.parquet"
    )
    (directory / "parts").mkdir()
    (directory / "parts" / "part-00000.jsonl").write_bytes(b'{"a": 1}\n')
    if big:
        (directory / "big.bin").write_bytes(os.urandom(big))
    write_manifest(
        directory, dataset="demo", run_id="run-7", date="2026-11-23",
        started_at=datetime.now(UTC), counts={"rows_in": 1},
    )
    return directory


def test_publish_round_trip_manifest_last(tmp_path: Path, s3_config: S3Config, s3_bucket: str) -> None:
    directory = _make_run(tmp_path / "out")
    result = publish_run(directory, f"s3://{s3_bucket}/datasets", s3_config)
    prefix = "datasets/demo/2026-11-23/run-7/"
    assert result.uri == f"s3://{s3_bucket}/{prefix}"
    assert result.uploaded == [
        prefix + "parts/part-00000.jsonl", prefix + "rows.parquet", prefix + MANIFEST_NAME,
    ]
    assert result.uploaded[-1] == result.manifest_key  # manifest strictly last
    assert result.skipped == []
    client = s3_config.client()
    assert sorted(list_keys(client, s3_bucket, prefix)) == sorted(result.uploaded)
    back = tmp_path / "back"
    written = download(f"s3://{s3_bucket}/{prefix}", back, s3_config)
    assert len(written) == 3
    for path in directory.rglob("*"):
        if path.is_file():
            assert (back / path.relative_to(directory)).read_bytes() == path.read_bytes()
    head = client.head_object(Bucket=s3_bucket, Key=prefix + "rows.parquet", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"]  # server-side SHA256, compared with the local digest
    manifest = orjson.loads((directory / MANIFEST_NAME).read_bytes())
    assert head["Metadata"]["sha256"] == manifest["files"]["rows.parquet"]["sha256"]


def test_republish_is_idempotent(tmp_path: Path, s3_config: S3Config, s3_bucket: str) -> None:
    directory = _make_run(tmp_path)
    first = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    second = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    assert len(first.uploaded) == 3
    assert second.uploaded == [] and sorted(second.skipped) == sorted(first.uploaded)
    assert second.bytes_uploaded == 0
    keys = list_keys(s3_config.client(), s3_bucket, "")
    assert sorted(keys) == sorted(first.uploaded)  # no duplicates


def test_interrupted_publish_leaves_no_manifest_and_resumes(
    tmp_path: Path, s3_config: S3Config, s3_bucket: str
) -> None:
    directory = _make_run(tmp_path)
    seen: list[str] = []

    def crash_after_first(key: str) -> None:
        seen.append(key)
        raise ConnectionError("network dropped")

    with pytest.raises(ConnectionError):
        publish_run(directory, f"s3://{s3_bucket}", s3_config, on_uploaded=crash_after_first)
    keys = list_keys(s3_config.client(), s3_bucket, "")
    assert keys == seen and not any(k.endswith(MANIFEST_NAME) for k in keys)
    resumed = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    assert resumed.skipped == seen  # the finished upload is not repeated
    assert resumed.uploaded[-1].endswith(MANIFEST_NAME) and len(resumed.uploaded) == 2


def test_changed_file_is_refused(tmp_path: Path, s3_config: S3Config, s3_bucket: str) -> None:
    directory = _make_run(tmp_path)
    (directory / "rows.parquet").write_bytes(b"tampered")
    with pytest.raises(PublishError, match="sha256 differs"):
        publish_run(directory, f"s3://{s3_bucket}", s3_config)
    assert list_keys(s3_config.client(), s3_bucket, "") == []


def test_multipart_upload_verified(tmp_path: Path, s3_config: S3Config, s3_bucket: str) -> None:
    """12 MiB with 5 MiB parts (S3's minimum part size): three parts, composite checksum checked."""
    directory = _make_run(tmp_path, big=12 * 1024 * 1024)
    config = s3_config.model_copy(
        update={"multipart_threshold": 5 * 1024 * 1024, "multipart_chunksize": 5 * 1024 * 1024}
    )
    result = publish_run(directory, f"s3://{s3_bucket}", config)
    key = result.prefix + "big.bin"
    assert key in result.uploaded
    client = config.client()
    head = client.head_object(Bucket=s3_bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")  # really multipart
    assert head["ChecksumSHA256"]  # the server's composite checksum, which publish verified
    assert read_bytes(f"s3://{s3_bucket}/{key}", config) == (directory / "big.bin").read_bytes()
    again = publish_run(directory, f"s3://{s3_bucket}", config)
    assert again.uploaded == []


def test_load_rows_from_s3(s3_config: S3Config, s3_bucket: str) -> None:
    client = s3_config.client()
    client.put_object(Bucket=s3_bucket, Key="in/bad_rows.jsonl", Body=(DATA / "bad_rows.jsonl").read_bytes())
    client.put_object(Bucket=s3_bucket, Key="in/pairwise.csv", Body=(DATA / "pairwise.csv").read_bytes())
    uri = f"s3://{s3_bucket}/in/bad_rows.jsonl"
    result = load_rows(uri, s3=s3_config)
    assert result.counts.rows_valid == 2 and result.counts.rows_quarantined == 14
    assert set(result.quarantine["source"]) == {uri}
    assert load_rows(f"s3://{s3_bucket}/in/pairwise.csv", s3=s3_config).counts.rows_valid == 2


def test_missing_s3_object_is_one_input_error(s3_config: S3Config, s3_bucket: str) -> None:
    from judgeflow.columns import InputError

    with pytest.raises(InputError, match="cannot read"):
        load_rows(f"s3://{s3_bucket}/nope.jsonl", s3=s3_config)


def test_explicit_credentials_and_repr_hides_them(s3_server: str, s3_bucket: str) -> None:
    config = S3Config(
        endpoint_url=s3_server, region="us-east-1", addressing_style="path",
        access_key_id="AKIAEXPLICIT123456", secret_access_key="very-secret-value",
    )
    assert "very-secret-value" not in repr(config) and "AKIAEXPLICIT" not in repr(config)
    assert "very-secret-value" not in config.model_dump_json()
    config.client().put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    assert read_bytes(f"s3://{s3_bucket}/k", config) == b"x"


def test_transient_error_classification() -> None:
    slow = ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")
    denied = ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")
    internal = ClientError({"Error": {"Code": "Weird"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject")
    assert is_transient_s3_error(slow) and is_transient_s3_error(internal)
    assert not is_transient_s3_error(denied)
    assert is_transient_s3_error(EndpointConnectionError(endpoint_url="http://x"))
    try:
        try:
            raise slow
        except ClientError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert is_transient_s3_error(wrapped)
    assert not is_transient_s3_error(ValueError("nope"))
