"""S3-compatible object storage: read inputs from ``s3://`` URIs and publish run directories.

Works against AWS S3 and anything that speaks its API (MinIO, Ceph, R2, moto in tests) through
``S3Config.endpoint_url``. The promises the publish step keeps, because downstream jobs poll
for datasets and must never read a half-written one, nor a mix of two versions of a run:

* a run's files go to immutable, content-addressed keys ``{run prefix}v/{version}/{name}``
  (``judgeflow.storage.layout``), and ``manifest.json``, the pointer that lists every file with
  its key and sha256, is written LAST. A reader reads the manifest, then exactly the keys it
  lists: killed at any moment, a republish leaves either the old manifest (pointing at old,
  untouched objects) or the new one (every object already verified);
* every object is verified after upload (size, and the server's own SHA256 checksum: the plain
  digest for single-part uploads, the composite "digest of part digests" for multipart ones);
* the pointer is written with a conditional PUT (``If-Match`` the manifest read at the start,
  ``If-None-Match: *`` when there was none), so two publishes of one run racing never overwrite
  each other silently;
* re-publishing is idempotent: an object whose stored ``sha256`` metadata and size match is
  skipped (identical content has identical keys, so a rebuild of the same inputs uploads only
  its manifest, and a retried task does no duplicate PUTs).

Credentials come from the usual AWS chain (env, profile, instance role) or explicitly as
``SecretStr``; they are never logged, and ``S3Config``'s repr hides them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, SecretStr

from judgeflow.storage.layout import VERSIONS_DIR, check_relative, object_key_of, versioned_files
from judgeflow.storage.writer import atomic_write_bytes

if TYPE_CHECKING:  # boto3 and botocore are imported where S3 is used: 0.2 s and ~25 MB a plain judge skips
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import ClientError

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
    # If-Match / If-None-Match on the manifest PUT; turn off for stores that reject them (501)
    conditional_writes: bool = True

    def client(self) -> Any:
        """A boto3 S3 client for this config (credentials resolved by boto3, never printed)."""
        import boto3.session
        from botocore.config import Config as BotoConfig

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
        from boto3.s3.transfer import TransferConfig

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

    A published run is named by its manifest: a URI naming a ``manifest.json``, or a prefix
    holding one, downloads that run (``download_run``: the manifest and exactly the files it
    lists, checked). Returns the local paths written. A single object lands at ``dest`` if
    ``dest`` is not an existing directory, else at ``dest/<basename>``.
    """
    cfg = config or S3Config()
    s3 = client or cfg.client()
    bucket, key = parse_s3_uri(uri)
    if key.rsplit("/", 1)[-1] == MANIFEST_NAME:
        return download_run(uri, dest, cfg, client=s3)
    if (not key or key.endswith("/")) and _manifest_of(s3, bucket, key + MANIFEST_NAME) is not None:
        return download_run(f"s3://{bucket}/{key}{MANIFEST_NAME}", dest, cfg, client=s3)
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


def download_run(manifest_uri: str, dest: Path, config: S3Config | None = None, *, client: Any = None) -> list[Path]:
    """Download the published run whose ``manifest.json`` is at ``manifest_uri`` into ``dest``.

    Reads the manifest once, then exactly the objects it lists, each checked against its sha256
    (a ``PublishError`` names the first that differs) and moved to ``dest/{name}`` only then;
    the manifest is written last. Whatever a concurrent republish does, the copy is one complete
    version. Returns the paths written, the manifest last.
    """
    cfg = config or S3Config()
    s3 = client or cfg.client()
    bucket, key = parse_s3_uri(manifest_uri)
    prefix = key[: -len(MANIFEST_NAME)]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    manifest = orjson.loads(body)
    files = {check_relative(name): info for name, info in sorted(manifest.get("files", {}).items())}
    dest = Path(dest)
    written: list[Path] = []
    for name, info in files.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.download")
        source = prefix + object_key_of(name, info)
        s3.download_file(bucket, source, str(partial), Config=cfg.transfer_config())
        if sha256_file(partial) != info["sha256"]:
            partial.unlink(missing_ok=True)
            raise PublishError(f"s3://{bucket}/{source}: {name} does not match its manifest's sha256")
        partial.replace(target)
        written.append(target)
    written.append(atomic_write_bytes(dest / MANIFEST_NAME, body))
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
    """What a publish did. ``uploaded`` is in upload order, so the manifest is its last entry.

    ``uri`` is the manifest's ``s3://`` URI: what a reader opens (``download(uri, dest)``).
    ``prefix`` is the run's prefix, ``version`` the folder under ``{prefix}v/`` holding its files.
    """

    uri: str
    bucket: str
    prefix: str
    version: str = ""
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
            "version": self.version,
            "uploaded": list(self.uploaded),
            "skipped": list(self.skipped),
            "bytes_uploaded": self.bytes_uploaded,
            "manifest_key": self.manifest_key,
        }


class PublishError(RuntimeError):
    """An upload that could not be verified, a run dir that does not match its manifest, a
    manifest changed by another publish meanwhile, or a downloaded file that is not what its
    manifest lists."""


@dataclass(frozen=True)
class _Pointer:
    """The manifest currently in S3 (its bytes and ETag), read before a publish starts."""

    body: bytes
    etag: str


def publish_run(
    run_dir: Path,
    destination: str,
    config: S3Config | None = None,
    *,
    client: Any = None,
    on_uploaded: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish ``run_dir`` under ``destination/{dataset}/{date}/{run_id}/``: files, then pointer.

    ``destination`` is ``s3://bucket[/prefix]``; dataset, date, run id and every file's key come
    from the run's ``manifest.json`` (``judgeflow.storage.manifest``). Only the files it lists are
    uploaded, each after checking the local file still has the recorded sha256, to its
    content-addressed key (skipped when already there); the manifest goes last, with a
    conditional PUT against the manifest read at the start. ``on_uploaded(key)`` is called after
    each verified upload (progress logging; tests use it to interrupt).
    """
    cfg = config or S3Config()
    s3 = client or cfg.client()
    run_dir = Path(run_dir)
    manifest_path = run_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PublishError(f"{run_dir}: no {MANIFEST_NAME}; write the run's outputs first")
    manifest_bytes = manifest_path.read_bytes()
    manifest = orjson.loads(manifest_bytes)
    entries = _local_entries(run_dir, manifest)
    bucket, base = parse_s3_uri(destination.rstrip("/") + "/")
    prefix = f"{base}{manifest['dataset']}/{manifest['date']}/{manifest['run_id']}/"
    manifest_key = prefix + MANIFEST_NAME
    result = PublishResult(
        uri=f"s3://{bucket}/{manifest_key}", bucket=bucket, prefix=prefix,
        version=str(manifest.get("version", "")), manifest_key=manifest_key,
    )
    before = _manifest_of(s3, bucket, manifest_key)  # what a reader sees until the pointer moves

    for local, digest, size, key in entries:
        key = prefix + key
        if _already_there(s3, bucket, key, digest, size):
            result.skipped.append(key)
            continue
        _upload_verified(s3, cfg, local, bucket, key, digest, size)
        result.uploaded.append(key)
        result.bytes_uploaded += size
        if on_uploaded is not None:
            on_uploaded(key)

    if before is not None and before.body == manifest_bytes:
        result.skipped.append(manifest_key)
        return result
    _put_pointer(s3, cfg, bucket, manifest_key, manifest_path, manifest_bytes, before)
    result.uploaded.append(manifest_key)
    result.bytes_uploaded += len(manifest_bytes)
    if on_uploaded is not None:
        on_uploaded(manifest_key)
    return result


def _local_entries(run_dir: Path, manifest: dict[str, Any]) -> list[tuple[Path, str, int, str]]:
    """(path, sha256, size, key under the run prefix) of every listed file, checked against the
    manifest: each file still has its sha256, and each key is its version's content address."""
    files = manifest.get("files", {})
    if any("key" not in info for info in files.values()):
        raise PublishError(
            f"{run_dir / MANIFEST_NAME}: files without a 'key' (written by an older judgeflow); "
            "write the manifest again (judgeflow.storage.manifest.write_manifest)"
        )
    digest, expected = versioned_files(files)
    if manifest.get("content_digest") != digest or any(
        info["key"] != expected[name]["key"] for name, info in files.items()
    ):
        raise PublishError(f"{run_dir / MANIFEST_NAME}: keys or content_digest do not match the files listed")
    entries: list[tuple[Path, str, int, str]] = []
    for name, info in sorted(files.items()):
        local = run_dir / check_relative(name)
        if not local.is_file():
            raise PublishError(f"{local}: listed in the manifest but missing")
        sha = sha256_file(local)
        if sha != info["sha256"]:
            raise PublishError(f"{local}: sha256 differs from the manifest (file changed?)")
        entries.append((local, sha, local.stat().st_size, info["key"]))
    return entries


def _manifest_of(s3: Any, bucket: str, key: str) -> _Pointer | None:
    """The manifest at ``key`` with its ETag, or None when there is none."""
    from botocore.exceptions import ClientError

    try:
        got = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return _Pointer(body=got["Body"].read(), etag=str(got["ETag"]))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _put_pointer(
    s3: Any, cfg: S3Config, bucket: str, key: str, local: Path, body: bytes, before: _Pointer | None
) -> None:
    """Write the manifest, only over the one read at the start (or none), then verify it.

    A 412 (or 409) means the manifest changed since: when it is now byte-identical to ours, it is
    our own write whose reply was lost and that botocore retried; otherwise another publish of
    this run moved the pointer meanwhile, and overwriting it would hide that.
    """
    from botocore.exceptions import ClientError

    digest = hashlib.sha256(body).hexdigest()
    condition: dict[str, str] = {}
    if cfg.conditional_writes:
        condition = {"IfMatch": before.etag} if before is not None else {"IfNoneMatch": "*"}
    try:
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/json",
            Metadata={"sha256": digest}, ChecksumAlgorithm="SHA256", **condition,
        )
    except ClientError as exc:
        if _code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
            raise
        now = _manifest_of(s3, bucket, key)
        if now is None or now.body != body:
            raise PublishError(
                f"s3://{bucket}/{key} changed while this run was being published (another publish "
                "of the same run id?); its files are uploaded, publish again to point at them"
            ) from exc
    _verify_upload(s3, cfg, local, bucket, key, digest, len(body))


def _already_there(s3: Any, bucket: str, key: str, digest: str, size: int) -> bool:
    from botocore.exceptions import ClientError

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
    _verify_upload(s3, cfg, local, bucket, key, digest, size)


def _verify_upload(
    s3: Any, cfg: S3Config, local: Path, bucket: str, key: str, digest: str, size: int
) -> None:
    """HEAD the object: its size, and the server's SHA256 (or MD5 ETag) against the local file."""
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


def prune_versions(
    manifest_uri: str,
    config: S3Config | None = None,
    *,
    client: Any = None,
    older_than: timedelta = timedelta(days=1),
) -> list[str]:
    """Delete the run's superseded versions: objects under ``{run prefix}v/`` that the current
    manifest does not list and that are older than ``older_than``. Returns the deleted keys.

    Never called by a publish: a reader that opened the previous manifest a moment ago is still
    reading its objects. The grace period also spares a version whose upload is in flight (its
    manifest not written yet). Run it from a maintenance job, or leave old versions to a bucket
    lifecycle rule.
    """
    s3 = client or (config or S3Config()).client()
    bucket, key = parse_s3_uri(manifest_uri)
    prefix = key[: -len(MANIFEST_NAME)]
    current = _manifest_of(s3, bucket, key)
    if current is None:
        raise PublishError(f"{manifest_uri}: no manifest; nothing says which version is current")
    manifest = orjson.loads(current.body)
    keep = {prefix + object_key_of(name, info) for name, info in manifest.get("files", {}).items()}
    cutoff = datetime.now(UTC) - older_than
    stale: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}{VERSIONS_DIR}/"):
        stale += [o["Key"] for o in page.get("Contents", []) if o["Key"] not in keep and o["LastModified"] < cutoff]
    for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]], "Quiet": True}
        )
    return stale


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
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

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
