"""What every judge client returns and raises, whichever wire or SDK it speaks.

The live path (``judgeflow.judging.live``) only knows this module: a ``JudgeClient`` turns one
(system, user) prompt into one ``Completion`` with a *single* attempt, and says with the error
class whether trying again can help. Retries, rate limits and budgets are layered on top
(``judgeflow.clients.resilient``) so every transport gets the same policy.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from judgeflow.clients.rate_headers import RateLimitSnapshot, read_rate_limits
from judgeflow.specs import Sampling


@dataclass(slots=True)
class Completion:
    """One judge reply: the text and what it cost. A slots dataclass: no pydantic per request."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    request_id: str | None = None
    attempts: int = 1  # HTTP attempts it took, transport retries included
    rate_limits: RateLimitSnapshot | None = None  # the reply's rate-limit headers, for pacing


class ClientError(Exception):
    """Base of the judge client errors. Messages never contain API keys or prompt text.

    The message is redacted on construction (every key judgeflow has resolved, and anything
    shaped like a key), so whatever path an error takes (a judgment record, a log line, a
    Prefect state message, a traceback) it cannot carry a key that an error body echoed.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(redact(message))
        self.status = status
        self.attempts = 1
        self.rate_limits: RateLimitSnapshot | None = None  # a 429's headers say when to go on

    @property
    def status_code(self) -> int | None:
        """The HTTP status, under the name the SDKs' errors use (for status-based classifiers)."""
        return self.status


class TransientError(ClientError):
    """Trying again may succeed (429, 408, 409, 5xx, 529, connection reset).

    ``retry_after`` is the delay in seconds the server asked for (``retry-after-ms`` or
    ``retry-after``), or None when it asked for nothing.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class TimeoutError(TransientError):  # noqa: A001 - the name the API promises; not the builtin
    """The request took longer than ``spec.timeout_s``. Retryable: the server may just be slow."""


RequestTimeout = TimeoutError  # alias for code that also uses the builtin TimeoutError


class PermanentError(ClientError):
    """Trying again cannot help (400, 401, 403, 404, 422 ...): the request fails with this reason."""


@runtime_checkable
class JudgeClient(Protocol):
    """Sends one chat request. One attempt per call; raises the errors above on failure."""

    async def complete(
        self,
        system: str | None,
        user: str,
        *,
        sampling: Sampling,
        response_format: dict[str, Any] | None = None,
    ) -> Completion: ...

    async def aclose(self) -> None: ...


RETRYABLE_STATUS: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def is_retryable_status(status: int) -> bool:
    """408/409/429 and every 5xx (529 = Anthropic overloaded) are worth another attempt."""
    return status in RETRYABLE_STATUS or status >= 500


def parse_retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms`` first, then ``retry-after``.

    ``retry-after`` may be seconds or an HTTP date. Works on any mapping with ``get``
    (aiohttp's CIMultiDict, httpx headers), looked up case-insensitively by those types.
    """
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


_KEYLIKE = re.compile(r"(sk-|sk_|key-)[A-Za-z0-9_*.-]{4,}")

#: Shorter values are not redacted by value (a placeholder such as "EMPTY" would mangle text).
MIN_SECRET_CHARS = 8
_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()


def remember_secret(secret: str | None) -> None:
    """Redact ``secret`` from every message from now on, in this process.

    Called wherever judgeflow gets hold of an API key (``resolve_api_key``, every client), so an
    error raised far from the client that knows the key is still scrubbed of it.
    """
    global _secrets
    if not secret or len(secret) < MIN_SECRET_CHARS or secret in _secrets:
        return
    with _secrets_lock:
        if secret not in _secrets:  # longest first: a key that contains another is fully replaced
            _secrets = tuple(sorted((*_secrets, secret), key=len, reverse=True))


def redact(text: str, secret: str | None = None) -> str:
    """``text`` without the API key, any key judgeflow has resolved, or anything shaped like one.

    Providers and gateways echo a wrong key in 401 messages ("Incorrect API key provided:
    sk-ab***", or the whole key); error messages end up in judgment records and logs, so they are
    scrubbed at the source.
    """
    for known in (secret, *_secrets) if secret else _secrets:
        if known and known in text:
            text = text.replace(known, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def error_for_status(
    status: int, message: str, headers: Any = None, *, secret: str | None = None
) -> ClientError:
    """The client error for an HTTP status: transient (with the server's delay) or permanent.

    ``x-should-retry: true|false`` from the server overrides the status, as the SDKs do.
    """
    text = redact(f"HTTP {status}: {message}", secret)[:500]
    should = headers.get("x-should-retry") if headers is not None else None
    error: ClientError
    if should == "false":
        error = PermanentError(text, status=status)
    elif should == "true" or is_retryable_status(status):
        error = TransientError(text, status=status, retry_after=parse_retry_after(headers))
    else:
        error = PermanentError(text, status=status)
    error.rate_limits = read_rate_limits(headers)
    return error
