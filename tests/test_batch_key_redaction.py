"""The Batch-API path never lets an echoed API key out: upload, create, poll and download errors
leave the providers as judgeflow errors with the key replaced, and nothing it writes holds it.

The simulator's ``echo_api_key`` mode quotes the presented key in every error message, as some
gateways do; the key is not shaped like ``sk-...``, so only redaction by value can catch it.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from judgeflow.batch.runner import (
    BatchWorkspace,
    is_transient,
    make_provider,
    prepare_chunks,
    run_batch_judges,
    submit_judge,
)
from judgeflow.clients.base import ClientError, PermanentError, TransientError
from judgeflow.simulator import Simulator
from tests.test_batch_runner import FAST, PROVIDERS, make_rows, make_spec

KEY = "gwtoken-BATCH-ECHO-5c4b3a29f8e7d6"
ENV = "JF_TEST_BATCH_KEY"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, KEY)


def shown(exc: BaseException) -> str:
    """Everything a log or a Prefect state could show of ``exc``: traceback (chained ones too)."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


def assert_clean(exc: BaseException) -> None:
    text = shown(exc)
    assert KEY not in text, text[-1500:]
    assert "[redacted]" in str(exc), str(exc)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_submit_with_a_rejected_key_raises_a_redacted_permanent_error(
    make_simulator: Any, tmp_path: Path, provider: str
) -> None:
    sim: Simulator = make_simulator(require_api_key="the-right-key", echo_api_key=True, **FAST)
    spec = make_spec(sim, provider)
    with pytest.raises(ClientError) as info:
        submit_judge(spec, make_rows(2), BatchWorkspace.at(tmp_path))
    assert isinstance(info.value, PermanentError) and info.value.status == 401
    assert f"judge {spec.name!r}" in str(info.value)
    assert not is_transient(info.value)
    assert_clean(info.value)
    assert sim.stats()["keys_echoed"] >= 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_upload_and_create_with_a_rejected_key_are_redacted(
    make_simulator: Any, tmp_path: Path, provider: str
) -> None:
    sim: Simulator = make_simulator(require_api_key="the-right-key", echo_api_key=True, **FAST)
    spec = make_spec(sim, provider)
    chunk = prepare_chunks(spec, make_rows(2), BatchWorkspace.at(tmp_path))[0]
    api = make_provider(spec)
    calls = [lambda: api.create(chunk, "file-x" if provider == "openai" else None, {})]
    if provider == "openai":
        calls.append(lambda: api.upload(chunk))
    for call in calls:
        with pytest.raises(PermanentError) as info:
            call()
        assert info.value.status == 401
        assert_clean(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_poll_and_download_errors_are_redacted(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim: Simulator = make_simulator(**FAST)
    spec = make_spec(sim, provider)
    ws = BatchWorkspace.at(tmp_path)
    entries = submit_judge(spec, make_rows(2), ws)
    provider_api = make_provider(spec)
    batch_id = entries[0].batch_id
    assert batch_id
    # poll: a 429 whose message quotes the key (the SDK's own retries run out first)
    sim.configure(echo_api_key=True, status_429_rate=1.0)
    with pytest.raises(TransientError) as info:
        provider_api.poll_once(batch_id)
    assert info.value.status == 429 and is_transient(info.value)
    assert_clean(info.value)
    sim.configure(status_429_rate=0.0)
    deadline = time.monotonic() + 10
    while not (status := provider_api.poll_once(batch_id)).terminal:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # download: rejected mid-way, while the caller iterates the streamed results
    sim.configure(require_api_key="the-right-key")
    with pytest.raises(PermanentError) as info:
        list(provider_api.collect(status))
    assert_clean(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_error_lines_and_failed_batches_store_no_key(make_simulator: Any, tmp_path: Path, provider: str) -> None:
    sim: Simulator = make_simulator(echo_api_key=True, batch_request_error_rate=0.5,
                                    fail_validation_first_n_batches=1, **FAST)
    spec = make_spec(sim, provider, max_rounds=2)
    rows = make_rows(4)
    frame = run_batch_judges(rows, [spec], tmp_path / "work", tmp_path / "out")[spec.name]
    assert sim.stats()["keys_echoed"] > 0
    errors = [e for e in frame["error"].to_list() if e]
    assert errors, "the faults produced no failed request"
    assert not [e for e in errors if KEY in e]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".parquet":
                data = pl.read_parquet(path).write_csv().encode()
            assert KEY.encode() not in data, path
