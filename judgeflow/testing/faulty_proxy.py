"""A fault-injecting HTTP reverse proxy for S3-compatible servers (tests and the reliability suite).

Why a proxy and not a patched client: the publish step must survive what a real S3 endpoint does
under load — ``503 SlowDown`` and connections reset in the middle of an upload — through boto3's
own retry logic and Prefect's task retries, with nothing patched. The proxy sits on 127.0.0.1 in
front of the moto server (or MinIO) and, per request, draws one fault from a seeded RNG:

* ``rate_503``: answer ``503 SlowDown`` in S3's XML error shape without forwarding;
* ``rate_reset``: read the request, then reset the TCP connection (RST) without answering;
* ``rate_reset_after``: forward the request (the object IS written upstream), then reset the
  connection before the client sees the reply — the nastiest case for idempotent uploads.

Faults apply only to methods in ``fault_methods`` (writes by default, so the suite's own reads of
the bucket stay clean). ``counters`` tells how many requests of each method passed and how many
faults were injected; the reliability suite uses the PUT count to kill a build mid-upload.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

# Hop-by-hop headers (RFC 9110 7.6.1) plus the ones aiohttp recomputes for the forwarded body.
_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "content-length"}
)
_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>faultyproxy</RequestId></Error>"
)


@dataclass
class FaultRates:
    """Per-request fault probabilities (at most one fault per request)."""

    rate_503: float = 0.0
    rate_reset: float = 0.0
    rate_reset_after: float = 0.0
    fault_methods: frozenset[str] = frozenset({"PUT", "POST"})
    seed: int = 0


@dataclass
class FaultyProxy:
    """``with FaultyProxy(upstream, FaultRates(rate_503=0.05)) as proxy: proxy.url``.

    Runs its own event loop in a daemon thread; binds 127.0.0.1 on a free port.
    """

    upstream: str
    rates: FaultRates = field(default_factory=FaultRates)
    counters: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.upstream = self.upstream.rstrip("/")
        self._rng = random.Random(self.rates.seed)

    # -- control -------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> None:
        """Change fault rates while running (e.g. ``configure(rate_503=0.0)``)."""
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.rates, key):
                    raise ValueError(f"unknown fault setting {key!r}")
                setattr(self.rates, key, value)

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters (``PUT``, ``GET``, ``fault_503``, ``fault_reset`` ...)."""
        with self._lock:
            return dict(self.counters)

    def start(self) -> FaultyProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start_server())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="faulty-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("faulty proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._stop_server(), self._loop)
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- server --------------------------------------------------------------------------------

    async def _start_server(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120)
        )
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop_server(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self._session.close()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1

    def _draw(self, method: str) -> str | None:
        with self._lock:
            self.counters[method] += 1
            if method not in self.rates.fault_methods:
                return None
            x = self._rng.random()
            r = self.rates
            if x < r.rate_503:
                fault = "fault_503"
            elif x < r.rate_503 + r.rate_reset:
                fault = "fault_reset"
            elif x < r.rate_503 + r.rate_reset + r.rate_reset_after:
                fault = "fault_reset_after"
            else:
                return None
            self.counters[fault] += 1
            return fault

    @staticmethod
    def _reset(request: web.Request) -> None:
        """Abort the client's connection with a TCP RST (SO_LINGER 0), as a dying LB would."""
        transport = request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()  # whole body first: a reset "during upload" follows it
        except ConnectionError:  # the client died mid-request (the suite SIGKILLs builds)
            self._count("client_gone")
            return web.Response(status=499)
        fault = self._draw(request.method)
        if fault == "fault_503":
            return web.Response(status=503, body=_SLOWDOWN, content_type="application/xml",
                                headers={"Retry-After": "0"})
        if fault == "fault_reset":
            self._reset(request)
            return web.Response(status=500)  # never reaches the client: the socket is gone
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method, self.upstream + str(request.rel_url), headers=headers, data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            status = upstream.status
            length = upstream.headers.get("Content-Length")
        if fault == "fault_reset_after":
            self._reset(request)
            return web.Response(status=500)  # never reaches the client
        response = web.Response(status=status, body=payload if request.method != "HEAD" else None,
                                headers=out_headers)
        if request.method == "HEAD" and length is not None:
            response.headers["Content-Length"] = length  # HEAD must report the object's size
        return response
