"""Prefect tasks that finish a run: write the manifest (and JSONL copies), publish to S3.

``publish_task`` is safe to retry, and safe to run again for a run id already published: the
core publish puts the files under immutable content-addressed keys (skipping those already
there, so a retry or an identical rebuild does no duplicate PUTs) and writes the manifest, the
pointer a reader opens, last. Killed at any moment, it leaves readers the old complete run or
the new one, never a mix (docs/data.md, "Publishing to S3").
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact

from judgeflow.config import BuildConfig
from judgeflow.storage.manifest import write_manifest
from judgeflow.storage.s3 import S3Config, publish_run
from judgeflow.storage.writer import write_frame
from tasks.io import RETRY_DELAYS_S, retry_on_transient_s3, run_logger, s3_config_from_settings


@task(name="write-outputs")
def write_outputs_task(
    run_dir: str,
    *,
    dataset: str,
    run_id: str,
    date: str,
    started_at: datetime,
    config: Any = None,
    counts: dict[str, int] | None = None,
    jsonl: bool = False,
    extra: dict[str, Any] | None = None,
) -> str:
    """Add ``{name}.jsonl`` beside each top-level Parquet (if ``jsonl``) and write the manifest.

    The frames themselves were written by the steps that made them; this step seals the run dir.
    Returns the manifest path.
    """
    logger = run_logger()
    directory = Path(run_dir)
    if jsonl:
        for parquet in sorted(directory.glob("*.parquet")):
            write_frame(pl.read_parquet(parquet), parquet.with_suffix(".jsonl"), "jsonl")
    path = write_manifest(
        directory, dataset=dataset, run_id=run_id, date=date, started_at=started_at,
        config=config, counts=counts, extra=extra,
    )
    logger.info("wrote %s", path)
    return str(path)


@task(
    name="publish",
    retries=len(RETRY_DELAYS_S),
    retry_delay_seconds=RETRY_DELAYS_S,
    retry_condition_fn=retry_on_transient_s3,
)
def publish_task(run_dir: str, destination: str, s3: S3Config | None = None) -> dict[str, Any]:
    """Upload ``run_dir`` under ``destination`` (manifest last, verified, idempotent).

    Returns ``PublishResult.to_dict()``: ``uri`` is the manifest's ``s3://`` URI, what a reader
    opens; a ``published`` artifact names it too.
    """
    logger = run_logger()
    result = publish_run(
        Path(run_dir), destination, s3, on_uploaded=lambda key: logger.debug("uploaded %s", key)
    )
    logger.info(
        "published %s (version %s): %d uploaded (%d bytes), %d already there", result.uri,
        result.version, len(result.uploaded), result.bytes_uploaded, len(result.skipped),
    )
    create_markdown_artifact(
        key="published",
        markdown=(
            f"Manifest: `{result.uri}`\n\nRead the manifest, then exactly the keys it lists "
            f"(files of version `{result.version}` under `s3://{result.bucket}/{result.prefix}v/`); "
            f"`judgeflow.storage.s3.download(uri, dest)` does both and checks every sha256.\n\n"
            f"{len(result.uploaded)} objects uploaded ({result.bytes_uploaded} bytes), "
            f"{len(result.skipped)} already there."
        ),
        description="Where this build was published",
    )
    return result.to_dict()


def write_outputs(
    config: BuildConfig, paths: Any, counts: dict[str, int], started: datetime,
    extra: dict[str, Any] | None = None,
) -> str:
    """``write_outputs_task`` for a build flow (``paths``: ``judgeflow.pipeline.RunPaths``);
    ``extra``: more top-level manifest keys (the build's ``status``)."""
    return write_outputs_task(
        str(paths.run_dir),
        dataset=config.dataset,
        run_id=paths.run_id,
        date=paths.day,
        started_at=started,
        config=config,
        counts=counts,
        jsonl="jsonl" in config.output.formats,
        extra=extra,
    )


def publish_outputs(config: BuildConfig, paths: Any) -> dict[str, Any]:
    """``publish_task`` for a build flow: ``config.output.publish_uri`` with its S3 settings."""
    if not config.output.publish_uri:
        raise ValueError("output.publish_uri is not set")
    return publish_task(
        str(paths.run_dir), config.output.publish_uri, s3_config_from_settings(config.output.s3)
    )
