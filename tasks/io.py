"""Prefect task that loads and validates the input rows, leaving Parquet files behind.

One task for the whole file (loading is vectorised: a task per chunk would only add overhead).
It returns *paths and counts*, never frames: Prefect pickles task results, and the next steps read
the Parquet files lazily. Transient S3 errors (5xx, SlowDown, dropped connections) are retried;
a bad file (``InputError``) is not, because retrying cannot fix it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger

from judgeflow.columns import ColumnMapping
from judgeflow.config import InputConfig, S3Settings
from judgeflow.formats import shown_columns
from judgeflow.loading import load_rows
from judgeflow.storage.s3 import MIB, S3Config, is_transient_s3_error
from judgeflow.storage.writer import write_frame
from judgeflow.validation import DEFAULT_MAX_TEXT_CHARS, reasons_by_field

RETRY_DELAYS_S = [2, 10, 30]


def run_logger() -> Any:
    """The run's logger inside Prefect; a plain Prefect logger when called via ``task.fn``."""
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("judgeflow.tasks")


def retry_on_transient_s3(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry only when the failure is a transient S3/network error."""
    exc = getattr(state, "data", None)
    if not isinstance(exc, BaseException):
        try:
            exc = state.result(raise_on_failure=False)
        except BaseException as raised:  # noqa: BLE001 - the state's exception is what we want
            exc = raised
    return isinstance(exc, BaseException) and is_transient_s3_error(exc)


def s3_config_from_settings(settings: S3Settings | S3Config | None) -> S3Config:
    """The core ``S3Config`` for a flow's ``S3Settings``, credentials from a block if named.

    The prefect-aws ``AwsCredentials`` block is read here (the core never imports Prefect);
    its secret stays a ``SecretStr`` and is never logged.
    """
    if settings is None:
        return S3Config()
    if isinstance(settings, S3Config):
        return settings
    extra: dict[str, Any] = {}
    if settings.aws_credentials_block:
        from prefect_aws import AwsCredentials

        block = AwsCredentials.load(settings.aws_credentials_block)
        extra = {
            "access_key_id": block.aws_access_key_id,
            "secret_access_key": block.aws_secret_access_key,
            "session_token": block.aws_session_token,
            "profile": block.profile_name,
        }
        if settings.region is None and block.region_name:
            extra["region"] = block.region_name
    return S3Config(
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        multipart_threshold=settings.multipart_threshold_mb * MIB,
        **{k: v for k, v in extra.items() if v is not None},
    )


@task(
    name="load-and-validate",
    retries=len(RETRY_DELAYS_S),
    retry_delay_seconds=RETRY_DELAYS_S,
    retry_condition_fn=retry_on_transient_s3,
)
def load_rows_task(
    uri: str,
    out_dir: str,
    *,
    format: str | None = None,
    columns: dict[str, str] | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    s3: S3Config | None = None,
) -> dict[str, Any]:
    """Load + validate ``uri``; write ``rows.parquet`` and ``quarantine.parquet`` to ``out_dir``.

    Returns ``{"rows_path", "quarantine_path", "counts": {rows_in, rows_valid,
    rows_quarantined}, "reasons": {field: n}, "source", "format", "dataset_format", "columns"}``:
    ``dataset_format`` the layout the rows were read as (``judgeflow.formats``, None when mapped by
    hand), ``columns`` each field read and the user's column it came from.
    """
    logger = run_logger()
    result = load_rows(
        uri,
        format=format,
        mapping=ColumnMapping(**(columns or {})),
        max_text_chars=max_text_chars,
        s3=s3,
    )
    out = Path(out_dir)
    rows_path = write_frame(result.rows, out / "rows.parquet")
    quarantine_path = write_frame(result.quarantine, out / "quarantine.parquet")
    counts = result.counts.model_dump()
    reasons = reasons_by_field(result.quarantine)
    columns = shown_columns(result.columns.model_dump(), result.dataset_format) if result.columns else None
    layout = f", {result.dataset_format} format" if result.dataset_format else ""
    logger.info(
        "%s (%s%s): %d rows in, %d valid, %d quarantined", uri, result.format, layout, counts["rows_in"],
        counts["rows_valid"], counts["rows_quarantined"],
    )
    for note in result.notes:  # decoded from UTF-16, holds no rows, ...
        logger.info("%s: %s", uri, note)
    if result.quarantine.height and TaskRunContext.get() is not None:  # artifacts need a run
        logger.warning("quarantined by field: %s", reasons)
        create_table_artifact(
            key="quarantine-sample",
            table=result.quarantine.head(20).select("source_index", "field", "reason").to_dicts(),
            description=f"First quarantined rows of {uri} ({counts['rows_quarantined']} in all)",
        )
    return {
        "rows_path": str(rows_path),
        "quarantine_path": str(quarantine_path),
        "counts": counts,
        "reasons": reasons,
        "source": result.source,
        "format": result.format,
        "dataset_format": result.dataset_format,
        "columns": columns,
    }


def load_and_validate(
    input_config: InputConfig, out_dir: str, s3: S3Settings | S3Config | None = None
) -> dict[str, Any]:
    """``load_rows_task`` driven by a flow's ``InputConfig`` (and its S3 endpoint settings)."""
    return load_rows_task(
        input_config.uri,
        out_dir,
        format=input_config.format,
        columns=dict(input_config.columns),
        max_text_chars=input_config.max_text_chars,
        s3=s3_config_from_settings(s3),
    )
