"""Provider wire shapes: reply bodies, error bodies and JSON responses.

Kept apart from the handlers so the batch endpoints build exactly the same message bodies as
the live endpoints. Plain dicts + orjson on purpose: no pydantic on the request path.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from aiohttp import web

from judgeflow.simulator import judge
from judgeflow.simulator.state import SimState

JSON = "application/json"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An orjson-encoded JSON response."""
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON, headers=headers)


def request_headers(request_id: str) -> dict[str, str]:
    """Both providers' request-id headers (OpenAI reads x-request-id, Anthropic request-id)."""
    return {"x-request-id": request_id, "request-id": request_id}


def retry_headers(seconds: float) -> dict[str, str]:
    """``retry-after`` (whole seconds, as HTTP wants) and the precise ``retry-after-ms``."""
    return {"retry-after": str(max(0, math.ceil(seconds))), "retry-after-ms": str(int(seconds * 1000))}


def openai_error(
    status: int,
    message: str,
    *,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    request_id: str = "",
    extra_headers: dict[str, str] | None = None,
) -> web.Response:
    """An error in OpenAI's shape ``{"error": {"message","type","param","code"}}``."""
    headers = request_headers(request_id) if request_id else {}
    if extra_headers:
        headers.update(extra_headers)
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_response(body, status=status, headers=headers)


def anthropic_error_body(type_: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    """Anthropic's error envelope ``{"type":"error","error":{"type","message"},"request_id"}``."""
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}


def anthropic_error(
    status: int,
    type_: str,
    message: str,
    *,
    request_id: str = "",
    extra_headers: dict[str, str] | None = None,
) -> web.Response:
    """An error response in Anthropic's shape."""
    headers = request_headers(request_id) if request_id else {}
    if extra_headers:
        headers.update(extra_headers)
    return json_response(anthropic_error_body(type_, message, request_id or None), status=status, headers=headers)


#: What the ``echo_api_key`` mode appends to every error message.
ECHO_PREFIX = " (API key provided: "


def _echo_in(obj: Any, key: str, in_error: bool) -> Any:
    """``obj`` with every ``message`` string inside an ``error``/``errors`` object extended."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if in_error and k == "message" and isinstance(v, str):
                out[k] = f"{v}{ECHO_PREFIX}{key})"
            else:
                out[k] = _echo_in(v, key, in_error or k in ("error", "errors"))
        return out
    if isinstance(obj, list):
        return [_echo_in(v, key, in_error) for v in obj]
    return obj


def echo_key(body: bytes, key: str) -> bytes:
    """A JSON or JSONL body whose error messages quote ``key`` (the ``echo_api_key`` mode).

    Works on whole bodies so that every endpoint (live, files, batches, batch results) echoes the
    same way without knowing about the mode; a body that is not JSON is returned unchanged.
    """
    try:
        tail = b"\n" if body.endswith(b"\n") else b""
        return orjson.dumps(_echo_in(orjson.loads(body), key, False)) + tail
    except orjson.JSONDecodeError:
        pass
    lines = body.split(b"\n")
    try:
        out = [orjson.dumps(_echo_in(orjson.loads(line), key, False)) if line.strip() else line
               for line in lines]
    except orjson.JSONDecodeError:
        return body
    return b"\n".join(out)


def openai_error_reply_200(request_id: str) -> dict[str, Any]:
    """A 200 body holding an error and no ``choices`` (what some OpenAI-compatible gateways send)."""
    return {"error": {"message": "The upstream provider returned an error.", "type": "upstream_error",
                      "param": None, "code": "upstream_error"}, "id": request_id}


def _text_of(content: Any) -> str:
    """Text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return ""


def prompt_of(messages: list[Any]) -> tuple[str, int]:
    """(the last user message's text, total characters of all messages) of a chat request."""
    prompt = ""
    total = 0
    for m in messages:
        if not isinstance(m, dict):
            continue
        text = _text_of(m.get("content"))
        total += len(text)
        if m.get("role") == "user":
            prompt = text
    return prompt, total


#: A chat request whose system prompt starts with this asks for a candidate response, not a
#: verdict (judgeflow.generation sends it); the simulator then writes an answer.
GENERATION_SYSTEM_PREFIX = "You are a helpful assistant."


def is_generation(body: dict[str, Any]) -> bool:
    """Whether a chat/messages request is a candidate-generation request (see above)."""
    system = body.get("system")
    if system is None:
        for m in body.get("messages") or ():
            if isinstance(m, dict) and m.get("role") == "system":
                system = m.get("content")
                break
    text = _text_of(system) if not isinstance(system, str) else system
    return bool(text) and text.startswith(GENERATION_SYSTEM_PREFIX)


def tokens(chars: int) -> int:
    """Approximate token count (chars / 4, at least 1)."""
    return max(1, chars // 4)


def wants_json(body: dict[str, Any]) -> bool:
    """Whether an OpenAI request asked for a JSON reply (``response_format`` json_*)."""
    rf = body.get("response_format")
    return isinstance(rf, dict) and rf.get("type") in ("json_schema", "json_object")


def judge_text(state: SimState, prompt: str, json_mode: bool, unparseable: bool) -> str:
    """The judge's reply text, or verdict-free text for the unparseable fault."""
    if unparseable:
        return judge.UNPARSEABLE_TEXT
    return judge.answer(prompt, json_mode=json_mode, position_bias_rate=state.config.position_bias_rate)


def chat_completion(state: SimState, body: dict[str, Any], text: str, prompt_chars: int) -> dict[str, Any]:
    """A ``chat.completion`` object answering ``body`` with ``text``."""
    p, c = tokens(prompt_chars), tokens(len(text))
    return {
        "id": state.next_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "gpt-sim",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        "service_tier": "default",
        "system_fingerprint": "fp_judgeflow_sim",
    }


def anthropic_message(state: SimState, body: dict[str, Any], text: str, prompt_chars: int) -> dict[str, Any]:
    """A ``message`` object answering ``body`` with ``text``."""
    return {
        "id": state.next_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or "claude-sim",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": tokens(prompt_chars),
            "output_tokens": tokens(len(text)),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def anthropic_prompt_chars(body: dict[str, Any], messages_chars: int) -> int:
    """Characters of an Anthropic request (messages + top-level system)."""
    system = body.get("system")
    return messages_chars + len(_text_of(system) if system is not None else "")


def openai_validate(body: Any) -> str | None:
    """Why an OpenAI chat request is invalid, or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not body.get("model"):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    return None


def anthropic_validate(body: Any) -> str | None:
    """Why an Anthropic messages request is invalid, or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not body.get("model"):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    return None


__all__ = [
    "anthropic_error",
    "anthropic_error_body",
    "anthropic_message",
    "anthropic_prompt_chars",
    "anthropic_validate",
    "chat_completion",
    "echo_key",
    "json_response",
    "judge_text",
    "openai_error",
    "openai_error_reply_200",
    "openai_validate",
    "prompt_of",
    "request_headers",
    "retry_headers",
    "tokens",
    "wants_json",
]
