"""The CLI path prints Prefect's progress, not its noise: no temporary-server banner or "View at"
link to a server that is gone, no "Concurrency limits [...] do not exist" per request block, and
exceptions in Prefect's console logs as one line unless ``--debug``."""

from __future__ import annotations

import logging

import pytest

from judgeflow.specs import JudgeSpec
from tasks.judge_live import provider_slots


def test_no_global_rate_limit_without_a_prefect_server() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    hosted = JudgeSpec(name="o", provider="openai")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert provider_slots(hosted) is None  # a temporary API: nothing shared, no missing-limit warnings
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert provider_slots(hosted) is not None  # a real server: the shared account limit applies


def _emit(logger_name: str, message: str, *, exc: BaseException | None = None, cached: bool = False) -> str:
    """What Prefect's console handler prints for one record."""
    from prefect.logging.handlers import PrefectConsoleHandler

    handler = next(h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler))
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord(logger_name, logging.INFO, __file__, 1, message, (), exc_info)
    record.flow_run_name = record.task_run_name = "run"  # what Prefect's run loggers add
    if cached and exc_info:  # another handler (Prefect's API log handler) formatted it first
        record.exc_text = logging.Formatter().formatException(exc_info)
    logger = logging.getLogger(logger_name)
    if not all(f.filter(record) for f in logger.filters):
        return ""
    return handler.format(record)


@pytest.fixture
def prefect_logging(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from prefect import flow  # noqa: F401 - importing the flow API configures Prefect's logging
    from prefect.logging.handlers import PrefectConsoleHandler

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    if not handlers:
        pytest.skip("Prefect's console handler is not configured in this process")
    saved_filters = {n: list(logging.getLogger(n).filters) for n in ("prefect", "prefect.flow_runs")}
    saved_format = [(h, h.__dict__.get("format")) for h in handlers]
    yield
    for name, filters in saved_filters.items():
        logging.getLogger(name).filters[:] = filters
    for handler, method in saved_format:
        if method is None:
            handler.__dict__.pop("format", None)
        else:
            handler.format = method


def test_banner_and_view_link_are_dropped_real_warnings_kept(prefect_logging: None) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from judgeflow.cli.run import quiet_prefect_console

    banner = "Starting temporary server on http://127.0.0.1:8123\nSee https://docs.prefect.io/v3 for more"
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert "docs.prefect.io" in _emit("prefect", banner)  # before: printed
        quiet_prefect_console(debug=False)
        assert _emit("prefect", banner) == ""
        assert _emit("prefect.flow_runs", "View at http://127.0.0.1:8123/runs/flow-run/x") == ""
        assert "judge 'a': 10/20 requests done" in _emit("prefect.flow_runs", "judge 'a': 10/20 requests done")
        assert "budget cap" in _emit("prefect", "budget cap of $1.00 reached")


def test_exceptions_in_console_logs_are_one_line_unless_debug(prefect_logging: None) -> None:
    from judgeflow.cli.run import quiet_prefect_console

    try:
        raise ValueError("the input is broken")
    except ValueError as caught:
        error = caught
    assert "Traceback" in _emit("prefect.task_runs", "Task failed", exc=error)  # Prefect's default
    quiet_prefect_console(debug=False)
    for cached in (False, True):
        shown = _emit("prefect.task_runs", "Task failed", exc=error, cached=cached)
        assert "Traceback" not in shown and "ValueError: the input is broken" in shown
