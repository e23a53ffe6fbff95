"""``manifest.json``: what a run produced, and the proof that a copy of it is complete.

The manifest lists every file of the run dir with its size, sha256 and the key it is published
under (``judgeflow.storage.layout``: a content-addressed version folder, so the manifest in S3
is byte-identical to the local one), the row counts, the run's configuration with secrets
removed, the package versions that produced it, and start/end times. It is the only file of a run
that holds times: every other file is a function of the inputs. It is what a downstream consumer
reads first, so it must never contain a credential.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from pydantic import BaseModel, SecretBytes, SecretStr

from judgeflow.storage.layout import version_of, versioned_files
from judgeflow.storage.s3 import MANIFEST_NAME, sha256_file
from judgeflow.storage.writer import atomic_write_bytes

REDACTED = "**redacted**"
PACKAGES = ("judgeflow", "prefect", "polars", "pydantic", "openai", "anthropic", "boto3", "orjson", "vllm", "llm-blender")
# Keys whose values are secrets. ``api_key_env`` (the *name* of an env var) is not one of them.
_SECRET_KEY = re.compile(
    r"(^|_)(api_?key|secret|secret_access_key|access_key_id|session_token|token|password|"
    r"passwd|credentials?|authorization|private_key)$",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(r"^(sk-|sk-ant-|AKIA|ASIA)[A-Za-z0-9_-]{8,}")


def scrub_secrets(value: Any) -> Any:
    """A JSON-able copy of ``value`` with secrets dropped.

    Removes ``SecretStr``/``SecretBytes`` values, values under secret-looking keys (``api_key``,
    ``secret_access_key``, ``token``, ``password`` ...), and strings shaped like provider keys.
    """
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, (SecretStr, SecretBytes)) or _SECRET_KEY.search(str(key)):
                continue
            out[str(key)] = scrub_secrets(item)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [scrub_secrets(v) for v in value if not isinstance(v, (SecretStr, SecretBytes))]
    if isinstance(value, (SecretStr, SecretBytes)):
        return REDACTED
    if isinstance(value, str):
        return REDACTED if _SECRET_VALUE.match(value) else value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (datetime, Path)):
        return str(value)
    return str(value)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape a run's output (absent ones skipped)."""
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def file_entries(directory: Path) -> dict[str, dict[str, Any]]:
    """{relative path: {bytes, sha256[, rows]}} for every file under ``directory`` but the manifest."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(directory).rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or path.name == MANIFEST_NAME:
            continue
        if any(part.startswith(".") for part in relative.parts):  # temp files, scratch dirs
            continue
        rel = relative.as_posix()
        entry: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        if path.suffix == ".parquet":
            entry["rows"] = pl.scan_parquet(path).select(pl.len()).collect().item()
        entries[rel] = entry
    return entries


def build_manifest(
    directory: Path,
    *,
    dataset: str,
    run_id: str,
    date: str,
    started_at: datetime,
    finished_at: datetime | None = None,
    config: Any = None,
    counts: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict for ``directory`` (files hashed now, each with its published key)."""
    finished = finished_at or datetime.now(UTC)
    digest, files = versioned_files(file_entries(directory))
    return {
        "manifest_version": 2,
        "dataset": dataset,
        "date": date,
        "run_id": run_id,
        "started_at": started_at.astimezone(UTC).isoformat(),
        "finished_at": finished.astimezone(UTC).isoformat(),
        "counts": dict(counts or {}),
        "content_digest": digest,
        "version": version_of(digest),
        "files": files,
        "config": scrub_secrets(config) if config is not None else {},
        "versions": package_versions(),
        **scrub_secrets(dict(extra or {})),
    }


def write_manifest(directory: Path, **kwargs: Any) -> Path:
    """Build and atomically write ``directory/manifest.json``; see ``build_manifest``."""
    manifest = build_manifest(Path(directory), **kwargs)
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return atomic_write_bytes(Path(directory) / MANIFEST_NAME, data + b"\n")


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a run dir."""
    return orjson.loads((Path(directory) / MANIFEST_NAME).read_bytes())
