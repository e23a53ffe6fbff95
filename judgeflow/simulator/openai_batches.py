"""OpenAI Files (``/v1/files``) and Batches (``/v1/batches``) with a faithful life cycle.

Input files are parsed and validated when the batch is created, but the verdict is revealed only
when the batch leaves ``validating``. Output and error files are written once, when a status call
first sees the batch terminal. See ``lifecycle.py`` for the timing model.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from judgeflow.simulator import wire
from judgeflow.simulator.batch_faults import CONFLICTING_TEXT, ResultLine, write_lines
from judgeflow.simulator.lifecycle import TERMINAL, Timeline
from judgeflow.simulator.live import STATE_KEY, authorized, unauthorized
from judgeflow.simulator.state import SimState

FILE_TTL_S = 30 * 24 * 3600
BATCH_WINDOW_S = 24 * 3600
MAX_FILE_BYTES = 200 * 1024 * 1024
ENDPOINTS = ("/v1/chat/completions",)
_FAIL_MESSAGES = {
    "token_limit_exceeded": (
        "Enqueued token limit reached for {model} in organization org-sim. Limit: 90,000 enqueued tokens. "
        "Please try again once some in_progress batches have been completed."
    ),
    "invalid_request": "The batch input file is invalid.",
}


@dataclass(slots=True)
class OpenAIBatch:
    """One batch: its requests, its planned outcome and what has been written so far."""

    id: str
    seq: int
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    timeline: Timeline
    requests: list[tuple[str, dict[str, Any]]]
    errors: list[dict[str, Any]] | None
    outcomes: list[str]  # per request: "ok" | "error" | "unparseable"
    model: str | None
    output_file_id: str | None = None
    error_file_id: str | None = None
    materialized: bool = False
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0})


# --- files ---------------------------------------------------------------------------------


def store_file(state: SimState, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
    """Keep ``content`` in memory and return its file object."""
    created = int(time.time())
    meta = {
        "id": state.next_id("file-"),
        "object": "file",
        "bytes": len(content),
        "created_at": created,
        "expires_at": created + FILE_TTL_S,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }
    state.files[meta["id"]] = {"meta": meta, "content": content}
    return meta


def _not_found(state: SimState, what: str, ident: str) -> web.Response:
    return wire.openai_error(
        404, f"No such {what}: '{ident}'", type_="invalid_request_error", request_id=state.next_id("req_")
    )


def _bad(state: SimState, message: str, param: str | None = None) -> web.Response:
    state.counts["bad_requests"] += 1
    return wire.openai_error(
        400, message, type_="invalid_request_error", param=param, request_id=state.next_id("req_")
    )


async def create_file(request: web.Request) -> web.StreamResponse:
    """``POST /v1/files`` (multipart: ``purpose`` and ``file``)."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    form = await request.post()
    upload = form.get("file")
    purpose = form.get("purpose")
    if not isinstance(upload, web.FileField):
        return _bad(state, "'file' is a required multipart field", "file")
    if purpose not in ("batch", "fine-tune", "assistants", "user_data", "evals"):
        return _bad(state, "'purpose' must be one of batch, fine-tune, assistants, user_data, evals", "purpose")
    content = upload.file.read()
    if len(content) > MAX_FILE_BYTES:
        return _bad(state, "File is too large: the limit for batch input files is 200 MB.", "file")
    state.counts["files_created"] += 1
    meta = store_file(state, content, upload.filename or "upload.jsonl", str(purpose))
    return wire.json_response(meta, headers=wire.request_headers(state.next_id("req_")))


async def get_file(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files/{id}``."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    f = state.files.get(request.match_info["file_id"])
    if f is None:
        return _not_found(state, "file", request.match_info["file_id"])
    return wire.json_response(f["meta"])


async def file_content(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files/{id}/content``: the raw bytes."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    f = state.files.get(request.match_info["file_id"])
    if f is None:
        return _not_found(state, "file", request.match_info["file_id"])
    state.counts["file_downloads"] += 1
    if f["meta"]["purpose"] == "batch_output":
        state.counts["batch_results_downloads"] += 1
    return web.Response(body=f["content"], content_type="application/octet-stream")


async def list_files(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files`` (optional ``purpose`` filter, ``limit``, ``after``; newest first)."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    purpose = request.query.get("purpose")
    metas = [f["meta"] for f in reversed(state.files.values()) if purpose in (None, f["meta"]["purpose"])]
    page, has_more = _page(metas, request.query.get("after"), _limit(request, 10_000))
    return wire.json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": has_more,
        }
    )


async def delete_file(request: web.Request) -> web.StreamResponse:
    """``DELETE /v1/files/{id}``."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    file_id = request.match_info["file_id"]
    if state.files.pop(file_id, None) is None:
        return _not_found(state, "file", file_id)
    return wire.json_response({"id": file_id, "object": "file", "deleted": True})


def _limit(request: web.Request, cap: int) -> int:
    try:
        return max(1, min(cap, int(request.query.get("limit", "20"))))
    except ValueError:
        return 20


def _page(items: list[dict[str, Any]], after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    start = 0
    if after:
        for i, item in enumerate(items):
            if item["id"] == after:
                start = i + 1
                break
    page = items[start : start + limit]
    return page, start + limit < len(items)


# --- batch creation and validation -----------------------------------------------------------


def _parse_input(content: bytes, endpoint: str, max_requests: int) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """Parse a JSONL input file into (custom_id, body) pairs plus validation errors."""
    requests: list[tuple[str, dict[str, Any]]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()

    def err(code: str, message: str, line: int, param: str | None = None) -> None:
        if len(errors) < 100:
            errors.append({"code": code, "message": message, "param": param, "line": line})

    for lineno, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            err("invalid_json_line", "This line is not parseable as valid JSON.", lineno)
            continue
        if not isinstance(obj, dict):
            err("invalid_json_line", "Each line must be a JSON object.", lineno)
            continue
        cid = obj.get("custom_id")
        if not isinstance(cid, str) or not cid:
            err("missing_required_parameter", "Missing required parameter: 'custom_id'.", lineno, "custom_id")
            continue
        if cid in seen:
            err("duplicate_custom_id", "The custom_id for this request is a duplicate of another request. "
                "The custom_id parameter must be unique for each request in a batch.", lineno, "custom_id")
            continue
        seen.add(cid)
        if obj.get("method") != "POST":
            err("invalid_method", "Only the POST method is supported.", lineno, "method")
            continue
        if obj.get("url") != endpoint:
            err("mismatched_endpoint", f"The provided URL does not match the batch endpoint '{endpoint}'.", lineno, "url")
            continue
        body = obj.get("body")
        problem = wire.openai_validate(body)
        if problem is not None:
            err("invalid_request", problem, lineno, "body")
            continue
        models.add(str(body["model"]))
        requests.append((cid, body))
    if len(models) > 1:
        err("mismatched_model", "All requests in a batch must use the same model.", 0, "body.model")
    if not requests and not errors:
        err("empty_file", "The batch input file is empty.", 0)
    if len(requests) > max_requests:
        err("too_many_requests", f"The batch input file has more than {max_requests} requests.", 0)
    return requests, errors


def draw_outcomes(state: SimState, provider: str, seq: int, custom_ids: list[str]) -> list[str]:
    """Per-request outcome ("ok" | "error" | "unparseable"), reproducible from the seed."""
    c = state.config
    if c.batch_request_error_rate <= 0 and c.rate_unparseable <= 0:
        return ["ok"] * len(custom_ids)
    out: list[str] = []
    rng = random.Random(f"{c.seed}:{provider}:{seq}")
    for cid in custom_ids:
        if c.batch_request_error_seed_by_attempt:
            u_err = rng.random()
        else:
            digest = hashlib.blake2b(f"{c.seed}:{cid}".encode(), digest_size=8).digest()
            u_err = int.from_bytes(digest, "big") / 2.0**64
        u_unp = rng.random()
        if u_err < c.batch_request_error_rate:
            out.append("error")
        elif u_unp < c.rate_unparseable:
            out.append("unparseable")
        else:
            out.append("ok")
    return out


def new_timeline(state: SimState, seq: int, *, fail_validation: bool) -> Timeline:
    """A timeline with the config's durations and planned expiry frozen in."""
    c = state.config
    return Timeline(
        created=time.time(),
        validating_s=c.batch_validating_s,
        in_progress_s=c.batch_in_progress_s,
        finalizing_s=c.batch_finalizing_s,
        cancel_s=c.batch_cancel_s,
        fail_validation=fail_validation,
        expire=c.batch_expire or seq < c.expire_first_n_batches,
        expire_done_fraction=c.batch_expire_done_fraction,
    )


async def create_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1/batches``."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _bad(state, "We could not parse the JSON body of your request.")
    if not isinstance(body, dict):
        return _bad(state, "The request body must be a JSON object.")
    c = state.config
    if c.batch_create_429_rate > 0 and state.batch_rng.random() < c.batch_create_429_rate:
        state.faults["batch_create_429"] += 1
        return wire.openai_error(
            429, "Rate limit reached for batch creation.", type_="requests", code="rate_limit_exceeded",
            request_id=state.next_id("req_"), extra_headers=wire.retry_headers(c.retry_after_s),
        )
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINTS:
        return _bad(state, f"Invalid endpoint: {endpoint!r}. Supported: {', '.join(ENDPOINTS)}", "endpoint")
    if body.get("completion_window") != "24h":
        return _bad(state, "completion_window must be '24h'", "completion_window")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16):
        return _bad(state, "metadata must be an object with at most 16 key-value pairs", "metadata")
    file_id = body.get("input_file_id")
    f = state.files.get(file_id) if isinstance(file_id, str) else None
    if f is None:
        return _bad(state, f"Invalid 'input_file_id': '{file_id}'. No such file.", "input_file_id")
    if f["meta"]["purpose"] != "batch":
        return _bad(state, "The input file must be uploaded with purpose 'batch'.", "input_file_id")

    advance_all(state)  # settle earlier batches first: double payment is judged against them
    requests, errors = _parse_input(f["content"], endpoint, c.max_batch_requests)
    seq = state.batches_created["openai"]
    state.batches_created["openai"] += 1
    state.counts["openai_batches_created"] += 1
    state.counts["openai_batch_requests"] += len(requests)
    model = str(requests[0][1]["model"]) if requests else None
    if not errors and (c.batch_fail_validation or seq < c.fail_validation_first_n_batches):
        code = c.batch_fail_validation_code
        errors.append(
            {"code": code, "message": _FAIL_MESSAGES.get(code, "The batch failed validation.").format(model=model),
             "param": None, "line": None}
        )
    if not errors and c.batch_token_limit is not None:
        tokens = sum(wire.tokens(len(orjson.dumps(b["messages"]))) for _, b in requests)
        if tokens > c.batch_token_limit:
            errors.append(
                {"code": "token_limit_exceeded", "message": _FAIL_MESSAGES["token_limit_exceeded"].format(model=model),
                 "param": None, "line": None}
            )
    custom_ids = [cid for cid, _ in requests]
    state.check_submitted("openai", custom_ids)
    batch = OpenAIBatch(
        id=state.next_id("batch_"),
        seq=seq,
        input_file_id=file_id,
        endpoint=endpoint,
        completion_window="24h",
        metadata=metadata,
        timeline=new_timeline(state, seq, fail_validation=bool(errors)),
        requests=requests,
        errors=errors or None,
        outcomes=draw_outcomes(state, "openai", seq, custom_ids),
        model=model,
    )
    state.openai_batches[batch.id] = batch
    return wire.json_response(batch_object(state, batch, time.time()), headers=wire.request_headers(state.next_id("req_")))


# --- life cycle ------------------------------------------------------------------------------


def _error_line(state: SimState, cid: str, code: str, message: str) -> dict[str, Any]:
    return {"id": state.next_id("batch_req_"), "custom_id": cid, "response": None,
            "error": {"code": code, "message": message}}


def _success_line(state: SimState, cid: str, completion: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": state.next_id("batch_req_"),
        "custom_id": cid,
        "response": {"status_code": 200, "request_id": state.next_id("req_"), "body": completion},
        "error": None,
    }


def materialize(state: SimState, batch: OpenAIBatch, now: float) -> None:
    """Write the output and error files of a terminal batch (once)."""
    phase = batch.timeline.phase(now)
    if batch.materialized or phase not in TERMINAL:
        return
    batch.materialized = True
    if phase == "failed":
        state.faults["batch_validation_failed"] += 1
        return
    n = len(batch.requests)
    done = batch.timeline.final_done(n)
    out_lines: list[ResultLine] = []
    err_lines: list[ResultLine] = []
    for i, (cid, body) in enumerate(batch.requests):
        if i >= done:
            if phase == "expired":
                line = _error_line(state, cid, "batch_expired",
                                   "This request could not be executed before the completion window expired.")
            else:
                line = _error_line(state, cid, "batch_cancelled", "This request was cancelled before it was executed.")
            err_lines.append(ResultLine(cid, line, paid=False))
            continue
        outcome = batch.outcomes[i]
        if outcome == "error":
            state.faults["batch_request_errors"] += 1
            err_lines.append(ResultLine(cid, {
                "id": state.next_id("batch_req_"),
                "custom_id": cid,
                "response": {
                    "status_code": 500,
                    "request_id": state.next_id("req_"),
                    "body": {"error": {"message": "The server had an error processing your request.",
                                       "type": "server_error", "param": None, "code": None}},
                },
                "error": None,
            }, paid=False))
            continue
        prompt, chars = wire.prompt_of(body["messages"])
        if outcome == "unparseable":
            state.faults["unparseable"] += 1
        text = wire.judge_text(state, prompt, wire.wants_json(body), outcome == "unparseable")
        completion = wire.chat_completion(state, body, text, chars)
        batch.usage["input_tokens"] += completion["usage"]["prompt_tokens"]
        batch.usage["output_tokens"] += completion["usage"]["completion_tokens"]
        out_lines.append(ResultLine(
            cid, _success_line(state, cid, completion), paid=True,
            conflict=lambda cid=cid, body=body, chars=chars: _success_line(
                state, cid, wire.chat_completion(state, body, CONFLICTING_TEXT, chars)),
        ))
    if phase == "expired":
        state.faults["batch_expired"] += 1
    out_bytes, paid = write_lines(state, "openai", batch.seq, out_lines)
    err_bytes, _ = write_lines(state, "openai-errors", batch.seq, err_lines)
    if out_bytes:
        batch.output_file_id = store_file(
            state, b"\n".join(out_bytes) + b"\n", f"{batch.id}_output.jsonl", "batch_output"
        )["id"]
    if err_bytes:
        batch.error_file_id = store_file(
            state, b"\n".join(err_bytes) + b"\n", f"{batch.id}_error.jsonl", "batch_output"
        )["id"]
    state.record_paid("openai", paid)


def advance_all(state: SimState) -> None:
    """Materialize every batch that has become terminal (cheap: terminal ones are skipped)."""
    now = time.time()
    for batch in state.openai_batches.values():
        if not batch.materialized:
            materialize(state, batch, now)


def _counts(batch: OpenAIBatch, now: float) -> dict[str, int]:
    t = batch.timeline
    phase = t.phase(now)
    n = len(batch.requests)
    if phase in ("validating", "failed"):
        return {"total": 0, "completed": 0, "failed": 0}
    if phase in TERMINAL:
        done = t.final_done(n)
        errors = sum(1 for o in batch.outcomes[:done] if o == "error")
        return {"total": n, "completed": done - errors, "failed": errors + (n - done)}
    at = t.cancel_at if t.cancel_at is not None else now
    done = t.done(n, at)
    errors = sum(1 for o in batch.outcomes[:done] if o == "error")
    return {"total": n, "completed": done - errors, "failed": errors}


def batch_object(state: SimState, batch: OpenAIBatch, now: float) -> dict[str, Any]:
    """The batch as the API returns it at time ``now``."""
    materialize(state, batch, now)
    t = batch.timeline
    phase = t.phase(now)

    def at(when: float | None, reached: bool) -> int | None:
        return int(when) if reached and when is not None else None

    cancelled = t.cancel_at is not None
    started = t.cancel_at if t.cancel_at is not None else now  # a batch cancelled while validating never ran
    usage_in, usage_out = batch.usage["input_tokens"], batch.usage["output_tokens"]
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": batch.model,
        "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": phase,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": int(t.created),
        "in_progress_at": at(t.v_end, not t.fail_validation and started >= t.v_end),
        "expires_at": int(t.created) + BATCH_WINDOW_S,
        "finalizing_at": at(t.ip_end, not cancelled and not t.expire and phase in ("finalizing", "completed")),
        "completed_at": at(t.fin_end, phase == "completed"),
        "failed_at": at(t.v_end, phase == "failed"),
        "expired_at": at(t.ip_end, phase == "expired"),
        "cancelling_at": at(t.cancel_at, cancelled),
        "cancelled_at": at((t.cancel_at or 0) + t.cancel_s, phase == "cancelled"),
        "request_counts": _counts(batch, now),
        "metadata": batch.metadata,
        "usage": {
            "input_tokens": usage_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage_in + usage_out,
        },
    }


def _status_429(state: SimState) -> web.Response | None:
    rate = state.config.status_429_rate
    if rate > 0 and state.batch_rng.random() < rate:
        state.faults["status_429"] += 1
        return wire.openai_error(
            429, "Rate limit reached for batch status requests.", type_="requests", code="rate_limit_exceeded",
            request_id=state.next_id("req_"), extra_headers=wire.retry_headers(state.config.retry_after_s),
        )
    return None


async def get_batch(request: web.Request) -> web.StreamResponse:
    """``GET /v1/batches/{id}`` (the status call; ``status_429_rate`` applies here)."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    state.counts["batch_status_calls"] += 1
    limited = _status_429(state)
    if limited is not None:
        return limited
    batch = state.openai_batches.get(request.match_info["batch_id"])
    if batch is None:
        return _not_found(state, "batch", request.match_info["batch_id"])
    return wire.json_response(batch_object(state, batch, time.time()), headers=wire.request_headers(state.next_id("req_")))


async def cancel_batch(request: web.Request) -> web.StreamResponse:
    """``POST /v1/batches/{id}/cancel``: ``cancelling``, later ``cancelled`` with partial results."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    batch = state.openai_batches.get(request.match_info["batch_id"])
    if batch is None:
        return _not_found(state, "batch", request.match_info["batch_id"])
    now = time.time()
    phase = batch.timeline.phase(now)
    if phase in ("cancelling", "cancelled"):
        return wire.json_response(batch_object(state, batch, now))
    if not batch.timeline.cancel(now):
        return _bad(state, f"Cannot cancel a batch with status '{phase}'.")
    state.counts["batch_cancels"] += 1
    return wire.json_response(batch_object(state, batch, now), headers=wire.request_headers(state.next_id("req_")))


async def list_batches(request: web.Request) -> web.StreamResponse:
    """``GET /v1/batches?limit=&after=`` (newest first, always with ``has_more``)."""
    state = request.app[STATE_KEY]
    if not authorized(state, request, anthropic=False):
        return unauthorized(state, anthropic=False)
    now = time.time()
    ids = [{"id": b.id} for b in reversed(state.openai_batches.values())]
    page_ids, has_more = _page(ids, request.query.get("after"), _limit(request, 100))
    page = [batch_object(state, state.openai_batches[p["id"]], now) for p in page_ids]
    return wire.json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": has_more,
        }
    )


def add_routes(app: web.Application) -> None:
    """Register the Files and Batches routes."""
    r = app.router
    r.add_post("/v1/files", create_file)
    r.add_get("/v1/files", list_files)
    r.add_get("/v1/files/{file_id}", get_file)
    r.add_get("/v1/files/{file_id}/content", file_content)
    r.add_delete("/v1/files/{file_id}", delete_file)
    r.add_post("/v1/batches", create_batch)
    r.add_get("/v1/batches", list_batches)
    r.add_get("/v1/batches/{batch_id}", get_batch)
    r.add_post("/v1/batches/{batch_id}/cancel", cancel_batch)


__all__ = ["OpenAIBatch", "add_routes", "advance_all", "batch_object", "materialize", "store_file"]
