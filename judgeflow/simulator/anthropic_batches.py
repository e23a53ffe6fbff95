"""Anthropic Message Batches (``/v1/messages/batches``): create, get, cancel, delete, list, results.

Same lazy timing model as the OpenAI batches (``lifecycle.py``), mapped to Anthropic's states:
validating + in_progress + finalizing are all ``in_progress``; a cancel request gives
``canceling``; every terminal phase is ``ended``. As documented by Anthropic, all requests count as
``processing`` until the batch ends. ``results_url`` is an ABSOLUTE url on this server (the SDK
fetches it as given), and the results are JSONL without blank lines.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from judgeflow.simulator import wire
from judgeflow.simulator.batch_faults import CONFLICTING_TEXT, ResultLine, write_lines
from judgeflow.simulator.lifecycle import TERMINAL, Timeline
from judgeflow.simulator.live import STATE_KEY, authorized, unauthorized
from judgeflow.simulator.openai_batches import draw_outcomes, new_timeline
from judgeflow.simulator.state import SimState

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
BATCH_WINDOW_S = 24 * 3600
ARCHIVE_AFTER_S = 29 * 24 * 3600


@dataclass(slots=True)
class AnthropicBatch:
    """One message batch and, once ended, its result lines."""

    id: str
    seq: int
    timeline: Timeline
    requests: list[tuple[str, dict[str, Any]]]
    outcomes: list[str]
    results: bytes | None = None
    counts: dict[str, int] | None = None
    deleted: bool = False


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC timestamp (what Anthropic returns)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def _err(state: SimState, status: int, type_: str, message: str) -> web.Response:
    if status == 400:
        state.counts["bad_requests"] += 1
    return wire.anthropic_error(status, type_, message, request_id=state.next_id("req_"))


def _validate(body: Any, max_requests: int) -> tuple[list[tuple[str, dict[str, Any]]] | None, str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        return None, "requests: Field required"
    reqs = body["requests"]
    if not 1 <= len(reqs) <= max_requests:
        return None, f"requests: must contain between 1 and {max_requests} items"
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for i, item in enumerate(reqs):
        if not isinstance(item, dict):
            return None, f"requests.{i}: must be an object"
        cid = item.get("custom_id")
        if not isinstance(cid, str) or not CUSTOM_ID.match(cid):
            return None, f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if cid in seen:
            return None, f"requests.{i}.custom_id: Duplicate custom_id '{cid}'; custom_id values must be unique."
        seen.add(cid)
        problem = wire.anthropic_validate(item.get("params"))
        if problem is not None:
            return None, f"requests.{i}.params.{problem}"
        out.append((cid, item["params"]))
    return out, None


def _materialize(state: SimState, batch: AnthropicBatch, now: float) -> None:
    """Compute result lines and final counts once the batch has ended."""
    phase = batch.timeline.phase(now)
    if batch.results is not None or phase not in TERMINAL:
        return
    n = len(batch.requests)
    done = batch.timeline.final_done(n)
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    lines: list[ResultLine] = []
    for i, (cid, params) in enumerate(batch.requests):
        result: dict[str, Any]
        conflict = None
        if i >= done:
            kind = "expired" if phase == "expired" else "canceled"
            result = {"type": kind}
        elif batch.outcomes[i] == "error":
            kind = "errored"
            state.faults["batch_request_errors"] += 1
            result = {"type": "errored", "error": wire.anthropic_error_body("api_error", "Internal server error")}
        else:
            kind = "succeeded"
            unparseable = batch.outcomes[i] == "unparseable"
            if unparseable:
                state.faults["unparseable"] += 1
            prompt, chars = wire.prompt_of(params["messages"])
            text = wire.judge_text(state, prompt, False, unparseable)
            prompt_chars = wire.anthropic_prompt_chars(params, chars)
            message = wire.anthropic_message(state, params, text, prompt_chars)
            result = {"type": "succeeded", "message": message}
            conflict = (lambda cid=cid, params=params, prompt_chars=prompt_chars: {
                "custom_id": cid,
                "result": {"type": "succeeded", "message": wire.anthropic_message(
                    state, params, CONFLICTING_TEXT, prompt_chars)},
            })
        counts[kind] += 1
        lines.append(ResultLine(cid, {"custom_id": cid, "result": result}, paid=kind == "succeeded",
                                conflict=conflict))
    if phase == "expired":
        state.faults["batch_expired"] += 1
    batch.counts = counts
    written, paid = write_lines(state, "anthropic", batch.seq, lines)
    batch.results = b"\n".join(written) + b"\n"
    state.record_paid("anthropic", paid)


def advance_all(state: SimState) -> None:
    """Settle every batch that has ended (so double payment is judged against it)."""
    now = time.time()
    for batch in state.anthropic_batches.values():
        if batch.results is None:
            _materialize(state, batch, now)


def batch_object(state: SimState, batch: AnthropicBatch, now: float, base_url: str) -> dict[str, Any]:
    """The message batch as the API returns it at time ``now``."""
    _materialize(state, batch, now)
    t = batch.timeline
    phase = t.phase(now)
    ended = phase in TERMINAL
    status = "ended" if ended else ("canceling" if phase == "cancelling" else "in_progress")
    ended_at = t.ended_at(now)
    counts = batch.counts if ended and batch.counts is not None else {
        "processing": len(batch.requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0,
    }
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "ended_at": rfc3339(ended_at),
        "created_at": rfc3339(t.created),
        "expires_at": rfc3339(t.created + BATCH_WINDOW_S),
        "archived_at": None,
        "cancel_initiated_at": rfc3339(t.cancel_at),
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _lookup(state: SimState, request: web.Request) -> AnthropicBatch | None:
    batch = state.anthropic_batches.get(request.match_info["batch_id"])
    return None if batch is None or batch.deleted else batch


async def create_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/batches``."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=True):
        return unauthorized(state, anthropic=True)
    raw = await request.read()
    if len(raw) > 256 * 1024 * 1024:
        return _err(state, 413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _err(state, 400, "invalid_request_error", "The request body is not valid JSON.")
    c = state.config
    if c.batch_create_429_rate > 0 and state.batch_rng.random() < c.batch_create_429_rate:
        state.faults["batch_create_429"] += 1
        return wire.anthropic_error(
            429, "rate_limit_error", "Rate limit reached for batch creation.", request_id=state.next_id("req_"),
            extra_headers=wire.retry_headers(c.retry_after_s),
        )
    requests, problem = _validate(body, c.max_anthropic_batch_requests)
    if requests is None:
        return _err(state, 400, "invalid_request_error", problem or "invalid request")
    advance_all(state)
    seq = state.batches_created["anthropic"]
    state.batches_created["anthropic"] += 1
    state.counts["anthropic_batches_created"] += 1
    state.counts["anthropic_batch_requests"] += len(requests)
    custom_ids = [cid for cid, _ in requests]
    state.check_submitted("anthropic", custom_ids)
    batch = AnthropicBatch(
        id=state.next_id("msgbatch_"),
        seq=seq,
        timeline=new_timeline(state, seq, fail_validation=False),
        requests=requests,
        outcomes=draw_outcomes(state, "anthropic", seq, custom_ids),
    )
    state.anthropic_batches[batch.id] = batch
    obj = batch_object(state, batch, time.time(), _base_url(request))
    return wire.json_response(obj, headers=wire.request_headers(state.next_id("req_")))


async def get_batch(request: web.Request) -> web.StreamResponse:
    """``GET /v1/messages/batches/{id}`` (status call; ``status_429_rate`` applies)."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=True):
        return unauthorized(state, anthropic=True)
    state.counts["batch_status_calls"] += 1
    rate = state.config.status_429_rate
    if rate > 0 and state.batch_rng.random() < rate:
        state.faults["status_429"] += 1
        return wire.anthropic_error(
            429, "rate_limit_error", "Rate limit reached for batch status requests.",
            request_id=state.next_id("req_"), extra_headers=wire.retry_headers(state.config.retry_after_s),
        )
    batch = _lookup(state, request)
    if batch is None:
        return _err(state, 404, "not_found_error", f"Message batch {request.match_info['batch_id']} not found.")
    obj = batch_object(state, batch, time.time(), _base_url(request))
    return wire.json_response(obj, headers=wire.request_headers(state.next_id("req_")))


async def cancel_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/batches/{id}/cancel``: ``canceling``, then ``ended``."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=True):
        return unauthorized(state, anthropic=True)
    batch = _lookup(state, request)
    if batch is None:
        return _err(state, 404, "not_found_error", f"Message batch {request.match_info['batch_id']} not found.")
    now = time.time()
    if batch.timeline.cancel_at is None:
        if not batch.timeline.cancel(now):
            return _err(state, 400, "invalid_request_error", "Batch has already ended and cannot be canceled.")
        state.counts["batch_cancels"] += 1
    obj = batch_object(state, batch, now, _base_url(request))
    return wire.json_response(obj, headers=wire.request_headers(state.next_id("req_")))


async def delete_batch(request: web.Request) -> web.StreamResponse:
    """``DELETE /v1/messages/batches/{id}`` (only once ended)."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=True):
        return unauthorized(state, anthropic=True)
    batch = _lookup(state, request)
    if batch is None:
        return _err(state, 404, "not_found_error", f"Message batch {request.match_info['batch_id']} not found.")
    if batch.timeline.phase(time.time()) not in TERMINAL:
        return _err(state, 400, "invalid_request_error", "Batch must be ended before it can be deleted; cancel it first.")
    batch.deleted = True
    return wire.json_response({"id": batch.id, "type": "message_batch_deleted"})


async def results(request: web.Request) -> web.StreamResponse:
    """``GET /v1/messages/batches/{id}/results``: JSONL, one line per request."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=True):
        return unauthorized(state, anthropic=True)
    batch = _lookup(state, request)
    if batch is None:
        return _err(state, 404, "not_found_error", f"Message batch {request.match_info['batch_id']} not found.")
    _materialize(state, batch, time.time())
    if batch.results is None:
        return _err(state, 400, "invalid_request_error", "Batch is still processing; results are not available yet.")
    state.counts["batch_results_downloads"] += 1
    return web.Response(body=batch.results, content_type="application/binary")


async def list_batches(request: web.Request) -> web.StreamResponse:
    """``GET /v1/messages/batches?limit=&after_id=&before_id=`` (newest first)."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=True):
        return unauthorized(state, anthropic=True)
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "20"))))
    except ValueError:
        limit = 20
    ids = [b.id for b in reversed(state.anthropic_batches.values()) if not b.deleted]
    after, before = request.query.get("after_id"), request.query.get("before_id")
    if after and after in ids:
        window = ids[ids.index(after) + 1 :]
        page_ids, has_more = window[:limit], len(window) > limit
    elif before and before in ids:
        window = ids[: ids.index(before)]
        page_ids, has_more = window[-limit:], len(window) > limit
    else:
        page_ids, has_more = ids[:limit], len(ids) > limit
    now, base = time.time(), _base_url(request)
    data = [batch_object(state, state.anthropic_batches[i], now, base) for i in page_ids]
    return wire.json_response(
        {"data": data, "has_more": has_more, "first_id": page_ids[0] if page_ids else None,
         "last_id": page_ids[-1] if page_ids else None}
    )


def add_routes(app: web.Application) -> None:
    """Register the Message Batches routes."""
    r = app.router
    r.add_post("/v1/messages/batches", create_batch)
    r.add_get("/v1/messages/batches", list_batches)
    r.add_get("/v1/messages/batches/{batch_id}", get_batch)
    r.add_delete("/v1/messages/batches/{batch_id}", delete_batch)
    r.add_post("/v1/messages/batches/{batch_id}/cancel", cancel_batch)
    r.add_get("/v1/messages/batches/{batch_id}/results", results)


__all__ = ["AnthropicBatch", "add_routes", "advance_all", "batch_object", "rfc3339"]
