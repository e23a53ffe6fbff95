"""Run the simulator in a daemon thread (tests, demo) or a child process (benchmarks).

In-process mode gives the server its own event loop in a daemon thread, so synchronous tests
and SDK clients can use it directly. ``process=True`` runs it in a spawned child process, so a
benchmark's client does not share the server's GIL. Either way the control calls
(``stats``, ``reset_stats``, ``configure``) go over HTTP to ``/_sim/...``: one code path for both.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import urllib.request
from multiprocessing.connection import Connection
from typing import Any

import orjson
from aiohttp import web

from judgeflow.simulator.app import build_app
from judgeflow.simulator.config import SimulatorConfig

# Loopback control calls must never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


async def _start_site(config: SimulatorConfig) -> tuple[web.AppRunner, int]:
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=4096, reuse_address=True)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, port


def _serve_in_child(config_json: bytes, conn: Connection) -> None:
    """Child-process entry point: serve until the parent closes the pipe or terminates us."""
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    config = SimulatorConfig.model_validate_json(config_json)

    async def main() -> None:
        runner, port = await _start_site(config)
        conn.send(port)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(conn.fileno(), stop.set)  # parent closed the pipe or sent "stop"
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


class Simulator:
    """A running provider simulator. Use as a context manager, or ``start()`` / ``stop()``.

    >>> with Simulator(SimulatorConfig(latency_ms=5)) as sim:
    ...     client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim")
    """

    def __init__(self, config: SimulatorConfig | None = None, process: bool = False, **overrides: Any) -> None:
        base = config or SimulatorConfig()
        # validated, so nested settings given as dicts (``rate_limits={"rpm": 60}``) become models
        self.config = SimulatorConfig.model_validate(base.model_dump() | overrides) if overrides else base
        self.process = process
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._proc: Any = None
        self._conn: Connection | None = None

    # --- addresses --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self.port is None:
            raise RuntimeError("simulator is not running")
        return f"http://{self.config.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for ``openai.OpenAI(base_url=...)`` (ends in ``/v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for ``anthropic.Anthropic(base_url=...)`` (the SDK adds ``/v1/...``)."""
        return self.url

    # --- life cycle --------------------------------------------------------------------
    def start(self) -> "Simulator":
        """Start serving; returns once the port is bound."""
        if self.port is not None:
            return self
        if self.process:
            self._start_process()
        else:
            self._start_thread()
        return self

    def _start_thread(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port = loop.run_until_complete(_start_site(self.config))
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._runner.cleanup())
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="judgeflow-simulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        if self.port is None:
            raise RuntimeError("simulator did not start within 30 s")

    def _start_process(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve_in_child, args=(self.config.model_dump_json().encode(), child), daemon=True,
            name="judgeflow-simulator",
        )
        self._proc.start()
        child.close()
        if not parent.poll(60):
            self._proc.terminate()
            raise RuntimeError("simulator process did not start within 60 s")
        self.port = int(parent.recv())
        self._conn = parent

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
            self._thread = None
        if self._proc is not None:
            if self._conn is not None:
                try:
                    self._conn.send("stop")
                except (OSError, BrokenPipeError):
                    pass
                self._conn.close()
                self._conn = None
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)
            self._proc = None
        self.port = None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control -----------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = orjson.dumps(payload) if payload is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with _OPENER.open(req, timeout=30) as resp:
            out: dict[str, Any] = orjson.loads(resp.read())
        return out

    def stats(self) -> dict[str, Any]:
        """Counters by kind, faults by type, double-payment detectors (see docs/simulator.md)."""
        return self._call("GET", "/_sim/stats")

    def reset_stats(self) -> dict[str, Any]:
        """Zero the counters (files, batches and detector history stay)."""
        return self._call("POST", "/_sim/reset", {})

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change config fields while running, e.g. ``sim.configure(rate_429=0.1)``."""
        SimulatorConfig.model_validate(self.config.model_dump() | changes)  # fail fast, here
        if self.port is not None:
            self.config = SimulatorConfig.model_validate(self._call("POST", "/_sim/config", changes))
        else:
            self.config = SimulatorConfig.model_validate(self.config.model_dump() | changes)
        return self.config


__all__ = ["Simulator"]
