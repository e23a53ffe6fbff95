"""S3-compatible object storage: read inputs from ``s3://`` URIs and publish run directories.

Works against AWS S3 and anything that speaks its API (MinIO, Ceph, R2, moto in tests) through
``S3Config.endpoint_url``. Three promises the publish step keeps, because downstream jobs poll
for datasets and must never read a half-written one:

* every object is verified after upload (size, and the server's own SHA256 checksum: the plain
  digest for single-part uploads, the composite "digest of part digests" for multipart ones);
* ``manifest.json`` is uploaded LAST, so its presence means the publish is complete;
* re-publishing the same run is idempotent: an object whose stored ``sha256`` metadata and size
  match the local file is skipped, so a retried task does no duplicate PUTs.

Credentials come from the usual AWS chain (env, profile, instance role) or explicitly as
``SecretStr``; they are never logged, and ``S3Config``'s repr hides them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
import orjson
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import BaseModel, ConfigDict, SecretStr

MANIFEST_NAME = "manifest.json"
MIB = 1024 * 1024
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "503",
        "500",
    }
)


class S3Config(BaseModel):
    """How to reach an S3-compatible store. Secrets are optional: the AWS chain is the default."""

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing_style: Literal["auto", "virtual", "path"] = "auto"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    multipart_threshold: int = 64 * MIB
    multipart_chunksize: int = 16 * MIB
    max_concurrency: int = 8
    max_attempts: int = 5  # botocore attempts per call (1 = no retry), below the task retries

    def client(self) -> Any:
        """A boto3 S3 client for this config (credentials resolved by boto3, never printed)."""
        session = boto3.session.Session(
            profile_name=self.profile,
            aws_access_key_id=_secret(self.access_key_id),
            aws_secret_access_key=_secret(self.secret_access_key),
            aws_session_token=_secret(self.session_token),
            region_name=self.region,
        )
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=BotoConfig(
                retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
                s3={"addressing_style": self.addressing_style},
            ),
        )

    def transfer_config(self) -> TransferConfig:
        """Multipart settings; the threshold is configurable so tests can exercise multipart."""
        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
        )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ("bucket", "some/key"); raises ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, key


def is_s3_uri(value: str | Path) -> bool:
    """True for ``s3://...`` strings."""
    return isinstance(value, str) and value.startswith("s3://")


def read_bytes(uri: str, config: S3Config | None = None, client: Any = None) -> bytes:
    """The whole object at ``uri`` (inputs are read once, then parsed by polars in memory)."""
    bucket, key = parse_s3_uri(uri)
    s3 = client or (config or S3Config()).client()
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def download(uri: str, dest: Path, config: S3Config | None = None, client: Any = None) -> list[Path]:
    """Download one object, or every object under a prefix (URI ending in "/"), into ``dest``.

    Returns the local paths written. A single object lands at ``dest`` if ``dest`` is not an
    existing directory, else at ``dest/<basename>``.
    """
    cfg = config or S3Config()
    s3 = client or cfg.client()
    bucket, key = parse_s3_uri(uri)
    if key and not key.endswith("/"):
        target = dest / key.rsplit("/", 1)[-1] if dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target), Config=cfg.transfer_config())
        return [target]
    written: list[Path] = []
    for obj_key in list_keys(s3, bucket, key):
        target = dest / obj_key[len(key):]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj_key, str(target), Config=cfg.transfer_config())
        written.append(target)
    return written


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (paginated)."""
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


# ---------------------------------------------------------------------------------------------
# publish
# ---------------------------------------------------------------------------------------------


@dataclass
class PublishResult:
    """What a publish did. ``uploaded`` is in upload order, so the manifest is its last entry."""

    uri: str
    bucket: str
    prefix: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    manifest_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for task results and artifacts)."""
        return {
            "uri": self.uri,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "uploaded": list(self.uploaded),
            "skipped": list(self.skipped),
            "bytes_uploaded": self.bytes_uploaded,
            "manifest_key": self.manifest_key,
        }


class PublishError(RuntimeError):
    """An upload that could not be verified, or a run dir that does not match its manifest."""


def publish_run(
    run_dir: Path,
    destination: str,
    config: S3Config | None = None,
    *,
    client: Any = None,
    on_uploaded: Callable[[str], None] | None = None,
) -> PublishResult:
    """Upload ``run_dir`` to ``destination/{dataset}/{date}/{run_id}/``, manifest last.

    ``destination`` is ``s3://bucket[/prefix]``; dataset, date and run id come from the run's
    ``manifest.json`` (written by ``judgeflow.storage.manifest``), and only the files it lists are
    uploaded, after checking each local file still has the recorded sha256. ``on_uploaded(key)``
    is called after each verified upload (progress logging; tests use it to interrupt).
    """
    cfg = config or S3Config()
    s3 = client or cfg.client()
    run_dir = Path(run_dir)
    manifest_path = run_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PublishError(f"{run_dir}: no {MANIFEST_NAME}; write the run's outputs first")
    manifest = orjson.loads(manifest_path.read_bytes())
    bucket, base = parse_s3_uri(destination.rstrip("/") + "/")
    prefix = f"{base}{manifest['dataset']}/{manifest['date']}/{manifest['run_id']}/"
    result = PublishResult(uri=f"s3://{bucket}/{prefix}", bucket=bucket, prefix=prefix)

    entries: list[tuple[str, Path, str, int]] = []
    for name, info in sorted(manifest.get("files", {}).items()):
        local = run_dir / name
        if not local.is_file():
            raise PublishError(f"{local}: listed in the manifest but missing")
        digest = sha256_file(local)
        if digest != info["sha256"]:
            raise PublishError(f"{local}: sha256 differs from the manifest (file changed?)")
        entries.append((name, local, digest, local.stat().st_size))
    entries.append((MANIFEST_NAME, manifest_path, sha256_file(manifest_path), manifest_path.stat().st_size))

    for name, local, digest, size in entries:
        key = prefix + name
        if _already_there(s3, bucket, key, digest, size):
            result.skipped.append(key)
            continue
        _upload_verified(s3, cfg, local, bucket, key, digest, size)
        result.uploaded.append(key)
        result.bytes_uploaded += size
        if on_uploaded is not None:
            on_uploaded(key)
    result.manifest_key = prefix + MANIFEST_NAME
    return result


def _already_there(s3: Any, bucket: str, key: str, digest: str, size: int) -> bool:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return head.get("Metadata", {}).get("sha256") == digest and head.get("ContentLength") == size


def _upload_verified(
    s3: Any, cfg: S3Config, local: Path, bucket: str, key: str, digest: str, size: int
) -> None:
    s3.upload_file(
        str(local),
        bucket,
        key,
        ExtraArgs={"Metadata": {"sha256": digest}, "ChecksumAlgorithm": "SHA256"},
        Config=cfg.transfer_config(),
    )
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    if head.get("ContentLength") != size:
        raise PublishError(f"s3://{bucket}/{key}: size {head.get('ContentLength')} != {size}")
    server = head.get("ChecksumSHA256")
    if server is None:
        # Stores without flexible checksums: fall back to the MD5 ETag of single-part uploads.
        etag = str(head.get("ETag", "")).strip('"')
        if "-" not in etag and etag and etag != md5_file(local):
            raise PublishError(f"s3://{bucket}/{key}: ETag {etag} does not match the local MD5")
        return
    expected = _expected_sha256_checksums(local, digest, size, cfg)
    if server.split("-")[0] not in expected:
        raise PublishError(f"s3://{bucket}/{key}: server SHA256 {server} does not match the file")


def _expected_sha256_checksums(local: Path, digest: str, size: int, cfg: S3Config) -> set[str]:
    """Base64 checksums the server may report: full-object, or composite over the part size."""
    full = base64.b64encode(bytes.fromhex(digest)).decode()
    expected = {full}
    if size >= cfg.multipart_threshold:
        parts: list[bytes] = []
        with local.open("rb") as handle:
            while chunk := handle.read(cfg.multipart_chunksize):
                parts.append(hashlib.sha256(chunk).digest())
        expected.add(base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode())
    return expected


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(MIB):
            h.update(block)
    return h.hexdigest()


def md5_file(path: Path) -> str:
    """Hex MD5 of a file (only to compare with single-part ETags)."""
    h = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as handle:
        while block := handle.read(MIB):
            h.update(block)
    return h.hexdigest()


def is_transient_s3_error(exc: BaseException) -> bool:
    """True for errors worth retrying: throttling, 5xx, dropped or refused connections.

    Follows ``__cause__``/``__context__`` because boto3's transfer manager wraps the botocore
    error (``S3UploadFailedError``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
            return True
        if isinstance(current, ClientError):
            err = current.response.get("Error", {})
            status = current.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if err.get("Code") in TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
                return True
        if isinstance(current, BotoCoreError) and "connect" in type(current).__name__.lower():
            return True
        text = str(current)
        if type(current).__name__ == "S3UploadFailedError" and any(
            code in text for code in ("SlowDown", "InternalError", "ServiceUnavailable", "503", "500")
        ):
            return True
        current = current.__cause__ or current.__context__
    return False
