"""The client boundary for the official SDKs: their exceptions become judgeflow's, keys removed.

An ``openai`` / ``anthropic`` exception carries the provider's error body in its message (a 401
from some gateways quotes the whole key) and the HTTP request and response in its attributes.
Left to propagate, it reaches Prefect's task-run state message, its logs (tracebacks include
chained exceptions) and its database. So every SDK call judgeflow makes (the live SDK transports,
the Batch-API providers) converts the SDK's errors here into a ``ClientError`` whose message is
redacted, raised ``from None`` so the original is not chained into tracebacks.

Both SDKs are generated from the same template and share the error hierarchy used here
(``APIError`` > ``APIStatusError`` / ``APIConnectionError`` > ``APITimeoutError``), so one
function serves both; the SDK module is passed in and never imported here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, TypeVar

from judgeflow.clients.base import (
    ClientError,
    TimeoutError,
    TransientError,
    error_for_status,
    redact,
)

F = TypeVar("F", bound=Callable[..., Any])


def _status_message(exc: Any) -> str:
    """The provider's own error message out of an ``APIStatusError`` (its parsed body), else the
    SDK's message (which holds the whole body)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)  # the openai SDK keeps the inner error object as the body
        if isinstance(err, dict):
            inner = err.get("error") if isinstance(err.get("error"), dict) else err  # anthropic nests
            message = inner.get("message") or inner.get("type")
            if message:
                return str(message)
    return str(getattr(exc, "message", None) or exc)


def client_error(exc: BaseException, sdk: ModuleType, secret: str | None = None,
                 what: str | None = None) -> ClientError:
    """The judgeflow error for an SDK exception: transient or permanent as its status says,
    timeouts and connection errors transient; the message redacted and prefixed with ``what``."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, sdk.APITimeoutError):
        return TimeoutError(f"{prefix}no reply within the timeout")
    if isinstance(exc, sdk.APIConnectionError):
        return TransientError(redact(f"{prefix}connection error: {exc}", secret))
    if isinstance(exc, sdk.APIStatusError):
        response = getattr(exc, "response", None)
        error = error_for_status(exc.status_code, _status_message(exc),
                                 getattr(response, "headers", None), secret=secret)
        if prefix:
            error.args = (redact(f"{prefix}{error}", secret),)
        return error
    # APIResponseValidationError and the like: a reply of the wrong shape, worth another try.
    return TransientError(redact(f"{prefix}{type(exc).__name__}: {exc}", secret))


def sdk_boundary(sdk: ModuleType, what: str) -> Callable[[F], F]:
    """Decorate a method of a class that talks to ``sdk``: its SDK errors leave as ``ClientError``.

    The key is taken from ``self._api_key`` (when the object has one) and the judge's name from
    ``self.spec.name``; the message reads ``judge 'x': <what>: HTTP 401: ...``. Generator methods
    (streamed results) are wrapped too, for errors raised while the caller iterates.
    """

    def decorate(fn: F) -> F:
        def convert(self: Any, exc: BaseException) -> ClientError:
            spec = getattr(self, "spec", None)
            where = f"judge {spec.name!r}: {what}" if spec is not None else what
            return client_error(exc, sdk, getattr(self, "_api_key", None), where)

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
                try:
                    return (yield from fn(self, *args, **kwargs))
                except sdk.APIError as exc:
                    raise convert(self, exc) from None

            return gen_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except sdk.APIError as exc:
                raise convert(self, exc) from None

        return wrapper  # type: ignore[return-value]

    return decorate
