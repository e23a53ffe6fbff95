"""When a task retry can help: shared ``retry_condition_fn``s for judgeflow's tasks.

A retry re-runs a whole chunk, so it is only worth it for failures a second attempt can fix (a
dropped connection, a node that ran out of memory, a throttled S3) and never for a bad input or
a bug, which would fail again and hide the real error behind retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Errors of the machine or the network, not of the data or the code.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (OSError, MemoryError, ConnectionError)

RetryCondition = Callable[[Any, Any, Any], bool]


def retry_when(worth_retrying: Callable[[BaseException], bool]) -> RetryCondition:
    """A Prefect ``retry_condition_fn`` that retries when the task's exception passes the test."""

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result(raise_on_failure=True)
        except BaseException as exc:  # noqa: BLE001 - classified, not handled
            return worth_retrying(exc)
        return False

    return condition


retry_on_infrastructure: RetryCondition = retry_when(lambda exc: isinstance(exc, INFRASTRUCTURE_ERRORS))
