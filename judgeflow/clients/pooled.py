"""The pooled-HTTP transport both lean clients share: one aiohttp session, orjson, no pydantic.

A provider client only says how to build its request body and how to read its reply; sending,
timeouts, error mapping and the session's life cycle are the same for every provider and live
here once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from judgeflow.clients.base import (
    PermanentError,
    TimeoutError,
    TransientError,
    error_for_status,
    redact,
    remember_secret,
)
from judgeflow.clients.rate_headers import RateLimitSnapshot, read_rate_limits


#: How much of an error body is kept before redaction; the final message is cut to 500 chars
#: after the key is replaced (cutting first could leave the head of an echoed key behind).
ERROR_BODY_CHARS = 4000


def error_message(raw: bytes) -> str:
    """The provider's error message from an error body, or the start of the raw body."""
    try:
        data = orjson.loads(raw)
        err = data.get("error")
        if isinstance(err, dict):
            inner = err.get("error") if isinstance(err.get("error"), dict) else err  # anthropic nests
            return str(inner.get("message") or inner.get("type") or err)
        if isinstance(err, str):
            return err
        return str(data.get("message") or data)[:ERROR_BODY_CHARS]
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return raw[:ERROR_BODY_CHARS].decode("utf-8", "replace")


class PooledJSONTransport:
    """POSTs JSON bodies to one URL over a lazily created, reused ``aiohttp.ClientSession``.

    The session is created inside the running event loop (an aiohttp session is bound to the loop
    that made it) with a connector limited to ``concurrency`` connections kept alive between
    requests. The API key lives only in the session headers: never in a repr or a message.
    """

    #: the response header carrying the provider's request id
    request_id_header = "x-request-id"

    def __init__(self, *, url: str, headers: dict[str, str], api_key: str | None,
                 concurrency: int, timeout_s: float) -> None:
        self.url = url
        self.concurrency = concurrency
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"Content-Type": "application/json", **headers}
        self._api_key = api_key
        remember_secret(api_key)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency, limit_per_host=self.concurrency, keepalive_timeout=60,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers, timeout=self.timeout)
        return self._session

    @property
    def rate_account(self) -> tuple[str, str | None]:
        """(URL, key): the provider account whose announced limits pace this client."""
        return self.url, self._api_key

    async def post_json(self, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Send ``body``; the decoded reply object and the request id header, or a ClientError.

        ``post_json_paced`` also returns the reply's rate-limit headers."""
        data, header_id, _ = await self.post_json_paced(body)
        return data, header_id

    async def post_json_paced(
        self, body: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None, RateLimitSnapshot | None]:
        """``post_json`` plus the reply's rate-limit headers (None when it sent none); an error
        carries them as ``ClientError.rate_limits``."""
        session = self._get_session()
        try:
            async with session.post(self.url, data=orjson.dumps(body)) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise error_for_status(resp.status, error_message(raw), resp.headers, secret=self._api_key)
                header_id = resp.headers.get(self.request_id_header)
                rate = read_rate_limits(resp.headers)
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise TimeoutError(f"no reply within {self.timeout.total:g} s") from None
        except aiohttp.ClientError as exc:
            raise TransientError(redact(f"connection error: {type(exc).__name__}: {exc}", self._api_key)) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise TransientError("reply is not JSON") from None
        if not isinstance(data, dict):
            raise PermanentError("reply is not a JSON object")
        return data, header_id, rate

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
