"""Live endpoints: OpenAI ``POST /v1/chat/completions`` and Anthropic ``POST /v1/messages``.

The request path is deliberately lean (orjson, string search, no pydantic) so the simulator can
serve thousands of requests per second and never be the bottleneck of a client benchmark.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from judgeflow.simulator import judge, wire
from judgeflow.simulator.rate_limits import Admission, go_duration
from judgeflow.simulator.state import SimState

STATE_KEY: web.AppKey[SimState] = web.AppKey("sim_state", SimState)


def api_key_of(request: web.Request, *, anthropic: bool) -> str | None:
    """The API key a client sent (``Authorization: Bearer`` or, for Anthropic, ``x-api-key``)."""
    auth = request.headers.get("Authorization")
    if auth and auth.startswith("Bearer "):
        return auth[7:]
    if anthropic:
        return request.headers.get("x-api-key")
    return None


def authorized(state: SimState, request: web.Request, *, anthropic: bool) -> bool:
    """Any key is accepted unless ``require_api_key`` is set; a missing key never is."""
    key = api_key_of(request, anthropic=anthropic)
    if not key:
        return False
    required = state.config.require_api_key
    return required is None or key == required


def unauthorized(state: SimState, *, anthropic: bool) -> web.Response:
    """401 in the provider's shape (the key is quoted only in the ``echo_api_key`` mode, which
    the application's middleware applies to every error body)."""
    state.counts["unauthorized"] += 1
    rid = state.next_id("req_")
    if anthropic:
        return wire.anthropic_error(401, "authentication_error", "invalid x-api-key", request_id=rid)
    return wire.openai_error(
        401, "Incorrect API key provided.", type_="invalid_request_error", code="invalid_api_key", request_id=rid
    )


async def _timeout(state: SimState, request: web.Request) -> web.StreamResponse:
    """Hold the request past the client's timeout, or drop it; never answer it."""
    state.faults["timeout"] += 1
    if state.config.timeout_mode == "hold":
        await asyncio.sleep(state.config.timeout_hold_s)
    transport = request.transport
    if transport is not None:
        transport.close()
    raise asyncio.CancelledError  # aiohttp treats this as a dropped request: nothing is written


async def _fault_or_none(
    state: SimState, request: web.Request, body_bytes: bytes, *, anthropic: bool
) -> tuple[web.StreamResponse | None, bytes, float]:
    """Apply latency and maybe a fault. Returns (error response or None, body key, u_unparseable)."""
    key, u_fault, u_unparse, u_jitter = state.draw(body_bytes)
    c = state.config
    delay = c.latency_ms + c.jitter_ms * u_jitter
    if delay > 0:
        await asyncio.sleep(delay / 1000.0)
    fault = state.live_fault(u_fault, anthropic=anthropic)
    if fault is None:
        # Drawn from the unparseable draw's upper range: independent of the other faults and of
        # ``rate_unparseable`` while the two rates sum to at most 1.
        if u_unparse >= 1.0 - c.rate_200_error:
            state.faults["error_200"] += 1
            return _error_200(state, anthropic=anthropic), key, u_unparse
        return None, key, u_unparse
    rid = state.next_id("req_")
    if fault == "timeout":
        await _timeout(state, request)
    state.faults[fault] += 1
    # Every retryable fault carries retry-after(-ms), so SDK retries wait only retry_after_s
    # instead of their own 0.5-8 s backoff: keeps tests and benchmarks fast.
    retry = wire.retry_headers(c.retry_after_s)
    if fault == "429":
        if anthropic:
            return (
                wire.anthropic_error(
                    429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit.",
                    request_id=rid, extra_headers=retry,
                ),
                key,
                u_unparse,
            )
        return (
            wire.openai_error(
                429, "Rate limit reached for requests. Please try again in a moment.",
                type_="requests", code="rate_limit_exceeded", request_id=rid, extra_headers=retry,
            ),
            key,
            u_unparse,
        )
    if fault == "500":
        if anthropic:
            return (
                wire.anthropic_error(500, "api_error", "Internal server error", request_id=rid, extra_headers=retry),
                key,
                u_unparse,
            )
        return (
            wire.openai_error(
                500, "The server had an error while processing your request. Sorry about that!",
                type_="server_error", request_id=rid, extra_headers=retry,
            ),
            key,
            u_unparse,
        )
    # 529: Anthropic's overloaded_error; OpenAI has no 529, its equivalent is a 503.
    if anthropic:
        return wire.anthropic_error(529, "overloaded_error", "Overloaded", request_id=rid, extra_headers=retry), key, u_unparse
    return (
        wire.openai_error(
            503, "The engine is currently overloaded, please try again later.",
            type_="server_error", code="overloaded", request_id=rid, extra_headers=retry,
        ),
        key,
        u_unparse,
    )


def _admit(
    state: SimState, request: web.Request, body: dict[str, Any], prompt_chars: int, *, anthropic: bool
) -> tuple[Admission | None, web.Response | None]:
    """The ``rate_limits`` mode: (admission whose headers go on the reply, or None when the mode
    is off; the provider's 429 when the request is beyond the key's limits)."""
    limits = state.config.rate_limits
    if limits is None:
        return None, None
    key = api_key_of(request, anthropic=anthropic) or ""
    max_tokens = body.get("max_tokens") if anthropic else (body.get("max_completion_tokens") or body.get("max_tokens"))
    admission = state.limits.admit(
        limits, key, anthropic=anthropic, input_tokens=wire.tokens(prompt_chars),
        max_tokens=int(max_tokens or 0),
    )
    if admission.refused is None:
        state.counts["rate_admitted"] += 1
        state.counts["rate_admitted_tokens"] += wire.tokens(prompt_chars) + int(max_tokens or 0)
        return admission, None
    state.counts["rate_limited"] += 1
    state.counts[f"rate_limited_{admission.refused}"] += 1
    rid = state.next_id("req_")
    headers = admission.headers
    wait = go_duration(admission.retry_after_s)
    if anthropic:
        what = "requests" if admission.refused == "requests" else "input or output tokens"
        return admission, wire.anthropic_error(
            429, "rate_limit_error",
            f"This request would exceed your organization's rate limit of {admission.limit} {what} per minute. "
            "Please reduce the prompt length or the maximum tokens requested, or try again later.",
            request_id=rid, extra_headers=headers,
        )
    unit = "requests per min (RPM)" if admission.refused == "requests" else "tokens per min (TPM)"
    return admission, wire.openai_error(
        429,
        f"Rate limit reached for {body.get('model') or 'gpt-sim'} in organization org-sim on {unit}: "
        f"Limit {admission.limit}. Please try again in {wait}.",
        type_=admission.refused, code="rate_limit_exceeded", request_id=rid, extra_headers=headers,
    )


def _with_limits(response: web.StreamResponse, admission: Admission | None) -> web.StreamResponse:
    """Every reply of a limited key carries the rate-limit headers (errors included)."""
    if admission is not None:
        response.headers.update(admission.headers)
    return response


def _release(state: SimState, request: web.Request, admission: Admission | None, output_tokens: int) -> None:
    """Anthropic: the unused part of ``max_tokens`` goes back to the OTPM bucket."""
    limits = state.config.rate_limits
    if admission is None or limits is None or "output" not in admission.charged:
        return
    state.limits.release(
        limits, api_key_of(request, anthropic=True) or "", anthropic=True,
        unused_output_tokens=int(admission.charged["output"]) - output_tokens,
    )


def _error_200(state: SimState, *, anthropic: bool) -> web.Response:
    """HTTP 200 whose body is an error, with no ``choices`` / ``content`` (``rate_200_error``)."""
    rid = state.next_id("req_")
    if anthropic:
        body = wire.anthropic_error_body("api_error", "The upstream provider returned an error.", rid)
    else:
        body = wire.openai_error_reply_200(rid)
    return wire.json_response(body, headers=wire.request_headers(rid))


def _reply_text(state: SimState, body: dict[str, Any], prompt: str, json_mode: bool, u_unparse: float) -> str:
    """What the model says: a generated candidate, or the judge's verdict (or, by the
    ``rate_unparseable`` fault, a reply with no verdict in it)."""
    if wire.is_generation(body):
        return judge.generate(prompt)
    unparseable = u_unparse < state.config.rate_unparseable
    if unparseable:
        state.faults["unparseable"] += 1
    return wire.judge_text(state, prompt, json_mode, unparseable)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """OpenAI ``POST /v1/chat/completions`` (non-streaming)."""
    state = request.app[STATE_KEY]
    state.counts["chat_completions"] += 1
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    raw = await request.read()
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        state.counts["bad_requests"] += 1
        return wire.openai_error(
            400, "We could not parse the JSON body of your request.", type_="invalid_request_error",
            request_id=state.next_id("req_"),
        )
    problem = wire.openai_validate(body)
    if problem is not None:
        state.counts["bad_requests"] += 1
        return wire.openai_error(400, problem, type_="invalid_request_error", request_id=state.next_id("req_"))
    if body.get("stream"):
        state.counts["bad_requests"] += 1
        return wire.openai_error(
            400, "The simulator does not stream.", type_="invalid_request_error", param="stream",
            request_id=state.next_id("req_"),
        )
    prompt, chars = wire.prompt_of(body["messages"])
    admission, refusal = _admit(state, request, body, chars, anthropic=False)
    if refusal is not None:
        return refusal
    error, key, u_unparse = await _fault_or_none(state, request, raw, anthropic=False)
    if error is not None:
        return _with_limits(error, admission)
    text = _reply_text(state, body, prompt, wire.wants_json(body), u_unparse)
    reply = wire.chat_completion(state, body, text, chars)
    state.record_success(key)
    return _with_limits(wire.json_response(reply, headers=wire.request_headers(state.next_id("req_"))), admission)


async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic ``POST /v1/messages`` (non-streaming)."""
    state = request.app[STATE_KEY]
    state.counts["messages"] += 1
    if not authorized(state, request, anthropic=True):
        return unauthorized(state, anthropic=True)
    raw = await request.read()
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        state.counts["bad_requests"] += 1
        return wire.anthropic_error(
            400, "invalid_request_error", "The request body is not valid JSON.", request_id=state.next_id("req_")
        )
    problem = wire.anthropic_validate(body)
    if problem is not None:
        state.counts["bad_requests"] += 1
        return wire.anthropic_error(400, "invalid_request_error", problem, request_id=state.next_id("req_"))
    if body.get("stream"):
        state.counts["bad_requests"] += 1
        return wire.anthropic_error(
            400, "invalid_request_error", "The simulator does not stream.", request_id=state.next_id("req_")
        )
    prompt, chars = wire.prompt_of(body["messages"])
    prompt_chars = wire.anthropic_prompt_chars(body, chars)
    admission, refusal = _admit(state, request, body, prompt_chars, anthropic=True)
    if refusal is not None:
        return refusal
    error, key, u_unparse = await _fault_or_none(state, request, raw, anthropic=True)
    if error is not None:
        _release(state, request, admission, 0)
        return _with_limits(error, admission)
    text = _reply_text(state, body, prompt, False, u_unparse)
    reply = wire.anthropic_message(state, body, text, prompt_chars)
    state.record_success(key)
    _release(state, request, admission, reply["usage"]["output_tokens"])
    return _with_limits(wire.json_response(reply, headers=wire.request_headers(state.next_id("req_"))), admission)


__all__ = ["STATE_KEY", "authorized", "chat_completions", "messages", "unauthorized"]
