"""Publishing run dirs to S3 (moto server over HTTP) and loading inputs from s3:// URIs."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from botocore.httpsession import URLLib3Session

from judgeflow.loading import load_rows
from judgeflow.storage.manifest import write_manifest
from judgeflow.storage.s3 import (
    MANIFEST_NAME,
    PublishError,
    S3Config,
    download,
    is_transient_s3_error,
    list_keys,
    prune_versions,
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


def _rewrite(directory: Path, **files: bytes) -> dict:
    """Change files of a run dir (new version) and seal it again with a fresh manifest."""
    for name, body in files.items():
        (directory / name).write_bytes(body)
    write_manifest(
        directory, dataset="demo", run_id="run-7", date="2026-11-23",
        started_at=datetime.now(UTC), counts={"rows_in": 2},
    )
    return orjson.loads((directory / MANIFEST_NAME).read_bytes())


def _parquet(text: str) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"blob": [text]}).write_parquet(buffer)
    return buffer.getvalue()


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _reader_view(client, bucket: str, manifest_key: str) -> dict[str, bytes]:
    """What a reader sees: the manifest, then exactly the objects it lists (sha256 checked)."""
    prefix = manifest_key[: -len(MANIFEST_NAME)]
    body = client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
    manifest = orjson.loads(body)
    seen = {MANIFEST_NAME: body}
    for name, info in manifest["files"].items():
        data = client.get_object(Bucket=bucket, Key=prefix + info["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], f"{name}: not the listed bytes"
        seen[name] = data
    return seen


def test_publish_round_trip_manifest_last(tmp_path: Path, s3_config: S3Config, s3_bucket: str) -> None:
    directory = _make_run(tmp_path / "out")
    result = publish_run(directory, f"s3://{s3_bucket}/datasets", s3_config)
    manifest = orjson.loads((directory / MANIFEST_NAME).read_bytes())
    prefix = "datasets/demo/2026-11-23/run-7/"
    version = manifest["version"]
    assert result.uri == f"s3://{s3_bucket}/{prefix}{MANIFEST_NAME}"  # a reader starts here
    assert result.prefix == prefix and result.version == version
    assert result.uploaded == [
        f"{prefix}v/{version}/parts/part-00000.jsonl", f"{prefix}v/{version}/rows.parquet",
        prefix + MANIFEST_NAME,
    ]
    assert result.uploaded[-1] == result.manifest_key  # manifest strictly last
    assert result.skipped == []
    client = s3_config.client()
    assert sorted(list_keys(client, s3_bucket, prefix)) == sorted(result.uploaded)
    # the manifest in S3 is the local one, byte for byte, and names every object's key
    assert _reader_view(client, s3_bucket, result.manifest_key) == _snapshot(directory)
    back = tmp_path / "back"
    written = download(result.uri, back, s3_config)  # the manifest URI downloads the run
    assert len(written) == 3
    assert _snapshot(back) == _snapshot(directory)
    head = client.head_object(Bucket=s3_bucket, Key=f"{prefix}v/{version}/rows.parquet", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"]  # server-side SHA256, compared with the local digest
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


def test_republish_of_changed_content_killed_midway_never_mixes_runs(
    tmp_path: Path, s3_config: S3Config, s3_bucket: str
) -> None:
    """Old complete run, or new complete run: never the new manifest over old files or back."""
    directory = _make_run(tmp_path)
    old = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    client = s3_config.client()
    old_view = _reader_view(client, s3_bucket, old.manifest_key)
    assert old_view == _snapshot(directory)

    # same run id, changed content (e.g. a rebuild after a fix): every file differs
    _rewrite(directory, **{"rows.parquet": _parquet("new rows"), "parts/part-00000.jsonl": b'{"a": 2}\n'})
    new_files = _snapshot(directory)
    uploads: list[str] = []

    def killed_after_one(key: str) -> None:
        uploads.append(key)
        raise KeyboardInterrupt("killed mid-upload")

    with pytest.raises(KeyboardInterrupt):
        publish_run(directory, f"s3://{s3_bucket}", s3_config, on_uploaded=killed_after_one)
    assert len(uploads) == 1 and not uploads[0].endswith(MANIFEST_NAME)
    assert _reader_view(s3_config.client(), s3_bucket, old.manifest_key) == old_view  # still the old run
    back = tmp_path / "mid"
    download(old.uri, back, s3_config)
    assert _snapshot(back) == old_view

    retried = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    assert retried.skipped == uploads and retried.uploaded[-1] == retried.manifest_key
    assert _reader_view(s3_config.client(), s3_bucket, retried.manifest_key) == new_files
    # the old version's objects were never touched (a reader mid-download of it keeps working)
    for name, info in orjson.loads(old_view[MANIFEST_NAME])["files"].items():
        body = client.get_object(Bucket=s3_bucket, Key=old.prefix + info["key"])["Body"].read()
        assert body == old_view[name]


def test_rebuild_with_identical_content_uploads_only_the_manifest(
    tmp_path: Path, s3_config: S3Config, s3_bucket: str
) -> None:
    directory = _make_run(tmp_path)
    first = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    manifest = _rewrite(directory)  # same files, new times in the manifest
    assert manifest["version"] == first.version
    second = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    assert second.uploaded == [second.manifest_key]  # no data object re-uploaded
    assert len(second.skipped) == 2
    assert _reader_view(s3_config.client(), s3_bucket, second.manifest_key) == _snapshot(directory)


def test_lost_reply_to_the_manifest_put_is_not_an_error(
    tmp_path: Path, s3_config: S3Config, s3_bucket: str
) -> None:
    """The server wrote the manifest, the reply was lost, botocore retries the conditional PUT
    and gets 412: that 412 is our own write, not a concurrent publisher."""
    directory = _make_run(tmp_path)
    publish_run(directory, f"s3://{s3_bucket}", s3_config)
    _rewrite(directory, **{"rows.parquet": _parquet("changed")})
    client = s3_config.client()
    lost: list[str] = []

    def write_then_drop(request, **_: object) -> None:
        if request.url.endswith(MANIFEST_NAME) and request.method == "PUT" and not lost:
            lost.append(request.url)
            URLLib3Session().send(request)  # the server applies the write ...
            raise ConnectionClosedError(endpoint_url=request.url)  # ... the reply never arrives

    client.meta.events.register("before-send.s3.PutObject", write_then_drop)
    result = publish_run(directory, f"s3://{s3_bucket}", s3_config, client=client)
    assert lost and result.uploaded[-1] == result.manifest_key
    assert _reader_view(s3_config.client(), s3_bucket, result.manifest_key) == _snapshot(directory)


def test_concurrent_publisher_is_not_overwritten(
    tmp_path: Path, s3_config: S3Config, s3_bucket: str
) -> None:
    """Two publishes of one run id racing: the later pointer write fails instead of clobbering."""
    first_dir = _make_run(tmp_path / "one")
    publish_run(first_dir, f"s3://{s3_bucket}", s3_config)
    mine = _make_run(tmp_path / "two")
    theirs = _make_run(tmp_path / "three")
    raced: list[str] = []

    def other_publisher_wins(key: str) -> None:
        if not raced:
            raced.append(key)
            publish_run(theirs, f"s3://{s3_bucket}", s3_config)

    with pytest.raises(PublishError, match="changed while"):
        publish_run(mine, f"s3://{s3_bucket}", s3_config, on_uploaded=other_publisher_wins)
    view = _reader_view(s3_config.client(), s3_bucket, "demo/2026-11-23/run-7/" + MANIFEST_NAME)
    assert view == _snapshot(theirs)


def test_download_checks_every_object(tmp_path: Path, s3_config: S3Config, s3_bucket: str) -> None:
    directory = _make_run(tmp_path / "run")
    result = publish_run(directory, f"s3://{s3_bucket}", s3_config)
    client = s3_config.client()
    client.put_object(Bucket=s3_bucket, Key=f"{result.prefix}v/{result.version}/rows.parquet", Body=b"x")
    with pytest.raises(PublishError, match="rows.parquet"):
        download(result.uri, tmp_path / "back", s3_config)
    assert not (tmp_path / "back" / "rows.parquet").exists()
    # a manifest naming a path outside the destination is refused
    evil = orjson.loads((directory / MANIFEST_NAME).read_bytes())
    evil["files"] = {"../escape.txt": {"key": "x", "sha256": "0" * 64, "bytes": 1}}
    client.put_object(Bucket=s3_bucket, Key="evil/manifest.json", Body=orjson.dumps(evil))
    with pytest.raises(ValueError, match="relative path"):
        download(f"s3://{s3_bucket}/evil/manifest.json", tmp_path / "evil", s3_config)
    assert not (tmp_path / "escape.txt").exists()


def test_run_prefix_downloads_the_current_version_and_prune_keeps_it(
    tmp_path: Path, s3_config: S3Config, s3_bucket: str
) -> None:
    directory = _make_run(tmp_path / "run")
    old = publish_run(directory, f"s3://{s3_bucket}/ds", s3_config)
    _rewrite(directory, **{"rows.parquet": _parquet("v2")})
    new = publish_run(directory, f"s3://{s3_bucket}/ds", s3_config)
    assert new.version != old.version
    client = s3_config.client()
    assert any(k.startswith(f"{old.prefix}v/{old.version}/") for k in list_keys(client, s3_bucket, old.prefix))
    back = tmp_path / "back"
    download(f"s3://{s3_bucket}/{new.prefix}", back, s3_config)  # the run prefix: current version only
    assert _snapshot(back) == _snapshot(directory)

    assert prune_versions(new.uri, s3_config, older_than=timedelta(days=1)) == []  # too young
    pruned = prune_versions(new.uri, s3_config, older_than=timedelta(0))
    assert sorted(pruned) == sorted(k for k in old.uploaded if "/v/" in k)
    left = list_keys(client, s3_bucket, new.prefix)
    assert sorted(left) == sorted(new.uploaded)
    assert _reader_view(client, s3_bucket, new.manifest_key) == _snapshot(directory)


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
    key = f"{result.prefix}v/{result.version}/big.bin"
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
