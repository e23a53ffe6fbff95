"""The io/publish Prefect tasks, run for real under the shared Prefect test harness."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from judgeflow.columns import InputError
from judgeflow.config import InputConfig, S3Settings
from judgeflow.schemas import QUARANTINE_SCHEMA, ROWS_SCHEMA
from judgeflow.storage.s3 import MANIFEST_NAME, S3Config, list_keys
from tasks.io import load_and_validate, load_rows_task, s3_config_from_settings
from tasks.publish import publish_task, write_outputs_task

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.prefect


def _run_count(state) -> int:
    with get_client(sync_client=True) as client:
        return client.read_task_run(state.state_details.task_run_id).run_count


def test_load_and_validate_task_writes_parquet(prefect_harness: Path, tmp_path: Path) -> None:
    @flow
    def load_flow() -> dict:
        return load_and_validate(InputConfig(uri=str(DATA / "bad_rows.jsonl")), str(tmp_path))

    out = load_flow()
    assert out["counts"] == {"rows_in": 16, "rows_valid": 2, "rows_quarantined": 14}
    rows = pl.read_parquet(out["rows_path"])
    quarantine = pl.read_parquet(out["quarantine_path"])
    assert rows.schema == pl.Schema(ROWS_SCHEMA) and rows.height == 2
    assert quarantine.schema == pl.Schema(QUARANTINE_SCHEMA) and quarantine.height == 14
    assert out["reasons"]["instruction"] == 6


def test_bad_input_is_not_retried(prefect_harness: Path, tmp_path: Path) -> None:
    captured: dict = {}

    @flow
    def bad_flow() -> None:
        future = load_rows_task.submit(str(DATA / "no_instruction.jsonl"), str(tmp_path))
        future.wait()
        captured["state"] = future.state

    bad_flow()
    task_state = captured["state"]
    assert task_state.is_failed()
    with pytest.raises(InputError, match="no instruction column"):
        task_state.result()
    assert _run_count(task_state) == 1


def test_load_from_s3_through_settings(
    prefect_harness: Path, tmp_path: Path, s3_server: str, s3_bucket: str
) -> None:
    settings = S3Settings(endpoint_url=s3_server, region="us-east-1")
    config = s3_config_from_settings(settings)
    config.client().put_object(Bucket=s3_bucket, Key="rows.jsonl", Body=(DATA / "native.jsonl").read_bytes())

    @flow
    def s3_flow() -> dict:
        return load_and_validate(InputConfig(uri=f"s3://{s3_bucket}/rows.jsonl"), str(tmp_path), settings)

    assert s3_flow()["counts"]["rows_valid"] == 3


def test_write_and_publish_tasks(
    prefect_harness: Path, tmp_path: Path, s3_config: S3Config, s3_bucket: str
) -> None:
    run_dir = tmp_path / "demo" / "2026-11-23" / "r1"
    run_dir.mkdir(parents=True)
    pl.DataFrame({"row_id": ["a"], "chosen": ["x"], "rejected": ["y"]}).write_parquet(run_dir / "pairs.parquet")

    @flow
    def finish() -> dict:
        manifest = write_outputs_task(
            str(run_dir), dataset="demo", run_id="r1", date="2026-11-23",
            started_at=datetime.now(UTC), counts={"pairs": 1}, jsonl=True,
        )
        assert Path(manifest).name == MANIFEST_NAME
        return publish_task(str(run_dir), f"s3://{s3_bucket}/pub", s3_config)

    result = finish()
    prefix = "pub/demo/2026-11-23/r1/"
    files = f"{prefix}v/{result['version']}/"  # immutable version folder; the manifest points at it
    assert result["uploaded"] == [files + "pairs.jsonl", files + "pairs.parquet", prefix + MANIFEST_NAME]
    assert result["uri"] == f"s3://{s3_bucket}/{prefix}{MANIFEST_NAME}"
    assert sorted(list_keys(s3_config.client(), s3_bucket, "pub/")) == sorted(result["uploaded"])

    @flow
    def republish() -> dict:
        return publish_task(str(run_dir), f"s3://{s3_bucket}/pub", s3_config)

    again = republish()  # the same sealed run dir: nothing to upload
    assert again["uploaded"] == [] and len(again["skipped"]) == 3


class _FailingS3(BaseHTTPRequestHandler):
    """Answers every S3 call with one fixed error status, and counts the calls."""

    status = 503
    calls = 0

    def _answer(self) -> None:
        type(self).calls += 1
        code = "SlowDown" if self.status == 503 else "AccessDenied"
        body = f"<Error><Code>{code}</Code><Message>test</Message></Error>".encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = _answer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def failing_s3() -> Iterator[type[_FailingS3]]:
    handler = type("Handler", (_FailingS3,), {"calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _sealed_run(root: Path) -> Path:
    run_dir = root / "demo" / "2026-11-23" / "r2"
    run_dir.mkdir(parents=True)
    pl.DataFrame({"x": [1]}).write_parquet(run_dir / "rows.parquet")
    write_outputs_task.fn(
        str(run_dir), dataset="demo", run_id="r2", date="2026-11-23", started_at=datetime.now(UTC)
    )
    return run_dir


@pytest.mark.parametrize(("status", "expected_runs"), [(503, 4), (403, 1)])
def test_publish_retries_only_transient_errors(
    prefect_harness: Path, tmp_path: Path, failing_s3, status: int, expected_runs: int
) -> None:
    failing_s3.status = status
    run_dir = _sealed_run(tmp_path)
    config = S3Config(
        endpoint_url=failing_s3.url, region="us-east-1", addressing_style="path", max_attempts=1,
        access_key_id="x", secret_access_key="y",
    )
    quick = publish_task.with_options(retry_delay_seconds=0)

    captured: dict = {}

    @flow
    def publish_flow() -> None:
        future = quick.submit(str(run_dir), "s3://bucket/pub", config)
        future.wait()
        captured["state"] = future.state

    publish_flow()
    task_state = captured["state"]
    assert task_state.is_failed()
    assert _run_count(task_state) == expected_runs
    assert failing_s3.calls == expected_runs  # one HEAD per attempt (botocore retries off)
