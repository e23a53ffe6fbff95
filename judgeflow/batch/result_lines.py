"""Reading one batch result line defensively, and saying what kind of failure a result is.

A result file is a provider's JSONL, read line by line. One line that is not valid JSON (or not
a result object) must cost that one request, never the whole paid batch: it becomes a
``BadLine`` that names the batch, the file and the line, and its request (whose custom_id is
often still readable in the broken text) is asked again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from judgeflow.batch.types import BadLine, FailureStatus, ResultItem

#: A custom_id in a damaged line. Bounded and without nested quantifiers: linear on any input.
_CUSTOM_ID = re.compile(r'"custom_id"\s{0,8}:\s{0,8}"([A-Za-z0-9_.:-]{1,128})"')

#: HTTP statuses of a batch request that say the request itself is unusable as sent (too long,
#: invalid): asking it again gives the same answer, so the failure is final.
_FINAL_HTTP = frozenset({400, 404, 413, 422})


def recover_custom_id(raw: str | bytes) -> str | None:
    """The custom_id still readable in a damaged result line, or None."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    match = _CUSTOM_ID.search(text[:4096])
    return match.group(1) if match else None


def read_line(raw: str | bytes, where: str) -> dict[str, Any] | BadLine:
    """The line's JSON object, or a ``BadLine`` saying why it cannot be used."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadLine(where, f"not valid JSON ({str(exc).split(':')[0]})", recover_custom_id(raw))
    if not isinstance(obj, dict):
        return BadLine(where, f"a JSON {type(obj).__name__}, not a result object")
    cid = obj.get("custom_id")
    if not isinstance(cid, str) or not cid:
        return BadLine(where, "a result without a custom_id")
    return obj



def read_lines(
    lines: Iterable[str | bytes], where: str, to_item: Callable[[dict[str, Any], str], ResultItem]
) -> Iterator[ResultItem | BadLine]:
    """Every non-blank line of a result file: ``to_item(obj, where)`` for a usable line, a
    ``BadLine`` for the others; ``where`` names the file, each line adds its number."""
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        at = f"{where} line {lineno}"
        line = read_line(raw, at)
        yield line if isinstance(line, BadLine) else to_item(line, at)


def status_for_http(code: Any) -> FailureStatus:
    """``failed`` for a request the provider refused as invalid, ``error`` for everything a later
    attempt may not meet (429, 5xx, auth, unknown)."""
    return "failed" if isinstance(code, int) and code in _FINAL_HTTP else "error"


def status_for_anthropic_error(kind: str) -> FailureStatus:
    """Anthropic's ``errored`` result types: an invalid request is final, the rest are not."""
    return "failed" if kind in ("invalid_request_error", "request_too_large") else "error"


__all__ = ["read_line", "read_lines", "recover_custom_id", "status_for_anthropic_error", "status_for_http"]
