"""What Prefect prints on the command line: its progress logs, without noise a user cannot act on.

``judgeflow run`` and ``judgeflow demo`` run the flow in process. Without ``PREFECT_API_URL``
Prefect starts a temporary local API and logs a banner about it (with a docs link), a
"View at http://127.0.0.1:PORT/..." link per flow run that points at a server gone when the
command ends, and a line when it stops. Those lines are dropped when the API is that temporary one (with a real server
the link is useful and kept). Exceptions in Prefect's console logs are shortened to one line
unless ``--debug``: judgeflow's own error handler says what went wrong and how to fix it.
Nothing else is filtered: real warnings still show.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from types import TracebackType

_TEMPORARY_API_LINES = ("Starting temporary server on", "Stopping temporary server on", "View at ")


class _DropTemporaryApiBanner(logging.Filter):
    """Drops the temporary API's banner and its per-run "View at" link."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(_TEMPORARY_API_LINES)


def _one_line(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    """An exception as its last line (``TypeName: message``), not a traceback."""
    return "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip().splitlines()[-1]


def _without_traceback(format_record: Callable[[logging.LogRecord], str]) -> Callable[[logging.LogRecord], str]:
    """A handler's ``format`` that prints a record's exception as one line.

    The traceback may already be cached on the record (``exc_text``: Prefect's API log handler
    formats it first), so both are set aside while formatting and put back for later handlers.
    """
    def format_one_line(record: logging.LogRecord) -> str:
        if not record.exc_info:
            return format_record(record)
        exc_info, exc_text = record.exc_info, record.exc_text
        record.exc_info = record.exc_text = None
        try:
            text = format_record(record)
        finally:
            record.exc_info, record.exc_text = exc_info, exc_text
        if exc_info[0] is None or str(exc_info[1]) in text:  # the message already says it
            return text
        return f"{text} ({_one_line(exc_info)})"

    format_one_line.judgeflow_one_line = True  # type: ignore[attr-defined]
    return format_one_line


def uses_temporary_api() -> bool:
    """True when no Prefect server is configured: Prefect starts a temporary one in process."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url is None and not os.environ.get("PREFECT_API_URL")


def quiet_prefect_console(*, debug: bool) -> None:
    """Install the filters above on Prefect's loggers and console handlers (idempotent).

    Call after ``import prefect`` (which configures its logging) and before the flow runs.
    """
    if uses_temporary_api():
        for name in ("prefect", "prefect.flow_runs", "prefect.server.api.server"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _DropTemporaryApiBanner) for f in logger.filters):
                logger.addFilter(_DropTemporaryApiBanner())
    if debug:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        item for item in logging.root.manager.loggerDict.values() if isinstance(item, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not getattr(handler.format, "judgeflow_one_line", False):
                handler.format = _without_traceback(handler.format)  # type: ignore[method-assign]
