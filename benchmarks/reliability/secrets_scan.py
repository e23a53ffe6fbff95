"""Look for the canary credentials everywhere a build leaves traces.

Places searched: the build subprocesses' stdout/stderr, every file of the output folder (run
folders, judgment store, batch ledger and chunk files), every object in the S3 bucket, every log
line and artifact on the Prefect server (read back through the Prefect client), and the Prefect
server's SQLite database file as a catch-all (flow-run parameters, states, task results).

Compressed data is decoded first: a key in a zstd-compressed Parquet column (a judgment record's
``error``) or in a gzip file is invisible in the raw bytes. Parquet files are read with polars and
every value searched (nested lists and structs included); gzip is decompressed. What cannot be
decoded is still searched as raw bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
#: Decompressed size a gzip member may reach before the scan stops reading it (a bomb guard).
MAX_DECODED_BYTES = 512 * 1024 * 1024


def _gunzip(data: bytes) -> bytes | None:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            return fh.read(MAX_DECODED_BYTES)
    except (OSError, EOFError, zlib.error):
        return None


def _parquet_text(data: bytes) -> bytes | None:
    """Every value of a Parquet file as NDJSON text (the schema's names too), or None."""
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - polars raises several types for a corrupt file
        return None
    return (" ".join(frame.columns) + "\n" + frame.write_ndjson()).encode()


def decoded(data: bytes) -> bytes:
    """``data`` plus what it holds once decompressed (gzip, possibly nested) or decoded (Parquet)."""
    parts = [data]
    for _ in range(3):  # e.g. a gzip of a Parquet file
        current = parts[-1]
        if current[:2] == GZIP_MAGIC:
            inner = _gunzip(current)
        elif current[:4] == PARQUET_MAGIC and current[-4:] == PARQUET_MAGIC:
            inner = _parquet_text(current)
        else:
            inner = None
        if inner is None:
            break
        parts.append(inner)
    return b"\n".join(parts)


def _hits(data: bytes, canaries: Iterable[str], where: str) -> list[str]:
    data = decoded(data)
    return [f"{where}: contains {c[:6]}..." for c in canaries if c.encode() in data]


def scan_files(roots: Iterable[Path], canaries: tuple[str, ...]) -> tuple[int, list[str]]:
    """(files scanned, findings) over every regular file under ``roots``."""
    scanned, found = 0, []
    for root in roots:
        paths = [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file())
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            scanned += 1
            found += _hits(data, canaries, str(path))
    return scanned, found


def scan_bucket(client: Any, bucket: str, canaries: tuple[str, ...]) -> tuple[int, list[str]]:
    """(objects scanned, findings) over every object in ``bucket`` (keys and bodies)."""
    scanned, found = 0, []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            scanned += 1
            where = f"s3://{bucket}/{obj['Key']}"
            found += _hits(obj["Key"].encode(), canaries, f"{where} (key)") + _hits(body, canaries, where)
    return scanned, found


async def _prefect_records(api_url: str) -> tuple[list[str], list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import LogSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            logs: list[str] = []
            offset = 0
            while True:
                page = await client.read_logs(limit=200, offset=offset, sort=LogSort.TIMESTAMP_ASC)
                logs += [f"{log.name} {log.message}" for log in page]
                if len(page) < 200:
                    break
                offset += 200
            artifacts: list[str] = []
            offset = 0
            while True:
                page = await client.read_artifacts(limit=200, offset=offset)
                artifacts += [f"{a.key} {a.type} {a.description} {a.data}" for a in page]
                if len(page) < 200:
                    break
                offset += 200
            offset = 0
            while True:
                runs = await client.read_flow_runs(limit=200, offset=offset)
                artifacts += [f"flow-run {r.name} {r.parameters} {_state_text(r.state)}" for r in runs]
                if len(runs) < 200:
                    break
                offset += 200
            offset = 0
            while True:  # task-run state messages hold the exception that failed the task
                tasks = await client.read_task_runs(limit=200, offset=offset)
                artifacts += [f"task-run {t.name} {_state_text(t.state)}" for t in tasks]
                if len(tasks) < 200:
                    break
                offset += 200
    return logs, artifacts


def _state_text(state: Any) -> str:
    """A run state's name, message and the state details Prefect shows (retries, results)."""
    if state is None:
        return "no state"
    return f"{state.type} {state.name} {state.message} {state.state_details}"


def scan_prefect(api_url: str, canaries: tuple[str, ...]) -> tuple[dict[str, int], list[str]]:
    """Read every log line, artifact, flow run and task run back from the Prefect API and
    search them (parameters, state names and messages)."""
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    logs, artifacts = asyncio.run(_prefect_records(api_url))
    found = []
    for i, line in enumerate(logs):
        found += _hits(line.encode(), canaries, f"prefect log #{i}")
    for i, text in enumerate(artifacts):
        found += _hits(text.encode(), canaries, f"prefect artifact/run #{i}")
    return {"prefect_logs": len(logs), "prefect_artifacts_and_runs": len(artifacts)}, found
