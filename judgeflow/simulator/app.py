"""The aiohttp application: routes for both providers plus the ``/_sim`` control endpoints."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from judgeflow.simulator import anthropic_batches, live, openai_batches, wire
from judgeflow.simulator.config import SimulatorConfig
from judgeflow.simulator.state import SimState

STATE_KEY = live.STATE_KEY


def apply_changes(state: SimState, changes: dict[str, Any]) -> SimulatorConfig:
    """Validate ``changes`` against the config model and swap the new config in atomically."""
    merged = state.config.model_dump() | changes
    new = SimulatorConfig.model_validate(merged)
    state.config = new
    return new


async def sim_stats(request: web.Request) -> web.Response:
    """``GET /_sim/stats``: counters, faults and double-payment detectors."""
    return wire.json_response(request.app[STATE_KEY].stats())


async def sim_reset(request: web.Request) -> web.Response:
    """``POST /_sim/reset``: zero the counters."""
    state = request.app[STATE_KEY]
    state.reset_stats()
    return wire.json_response(state.stats())


async def sim_get_config(request: web.Request) -> web.Response:
    """``GET /_sim/config``: the current configuration."""
    return wire.json_response(request.app[STATE_KEY].config.model_dump())


async def sim_config(request: web.Request) -> web.Response:
    """``POST /_sim/config``: change any config fields at run time (JSON object of changes)."""
    state = request.app[STATE_KEY]
    try:
        changes = orjson.loads(await request.read() or b"{}")
        if not isinstance(changes, dict):
            raise ValueError("body must be a JSON object")
        changes.pop("host", None)
        changes.pop("port", None)
        new = apply_changes(state, changes)
    except (ValueError, ValidationError) as exc:
        return wire.json_response({"error": str(exc)}, status=400)
    return wire.json_response(new.model_dump())


@web.middleware
async def echo_api_key(request: web.Request, handler: Any) -> web.StreamResponse:
    """The ``echo_api_key`` mode: quote the presented key in every error message of a reply.

    Applied to whole bodies here, after the handler, so every provider endpoint (live, files,
    batches, batch results) echoes without knowing about the mode. ``/_sim`` is left alone.
    """
    response = await handler(request)
    state = request.app[STATE_KEY]
    if not state.config.echo_api_key or request.path.startswith("/_sim"):
        return response
    key = live.api_key_of(request, anthropic=True)
    if not key or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    echoed = wire.echo_key(response.body, key)
    if echoed != response.body:
        state.counts["keys_echoed"] += 1
        # per endpoint too, so a test can tell which provider paths it really exercised
        route = request.match_info.route.resource
        path = route.canonical if route is not None else request.path
        state.counts[f"keys_echoed {request.method} {path}"] += 1
        response.body = echoed
    return response


def build_app(config: SimulatorConfig) -> web.Application:
    """A fresh simulator application with its own in-memory state."""
    # Large client_max_size: batch input files go up to 200 MB.
    app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[echo_api_key])
    state = SimState(config)
    app[STATE_KEY] = state
    app.router.add_post("/v1/chat/completions", live.chat_completions)
    app.router.add_post("/v1/messages", live.messages)
    app.router.add_get("/_sim/stats", sim_stats)
    app.router.add_post("/_sim/reset", sim_reset)
    app.router.add_get("/_sim/config", sim_get_config)
    app.router.add_post("/_sim/config", sim_config)
    openai_batches.add_routes(app)
    anthropic_batches.add_routes(app)
    return app


__all__ = ["STATE_KEY", "apply_changes", "build_app"]
