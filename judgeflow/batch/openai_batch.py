"""OpenAI Files + Batches through the official ``openai`` SDK.

Submit = upload the chunk file (``files.create(purpose="batch")``, streamed from its path) then
``batches.create`` with the chunk key in ``metadata``: that metadata is how a re-run finds a batch
whose creation never reached the ledger (``find_lost`` lists recent batches). Results are streamed
line by line from the output and error files (``files.with_streaming_response.content``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai

from judgeflow.batch.requests import OPENAI_ENDPOINT, Chunk
from judgeflow.batch.result_lines import read_lines, status_for_http
from judgeflow.batch.types import BadLine, BatchState, BatchStatus, ResultItem, Submission
from judgeflow.clients.base import redact
from judgeflow.clients.factory import resolve_api_key
from judgeflow.clients.fast_openai import parse_openai_reply
from judgeflow.clients.sdk_errors import sdk_boundary
from judgeflow.specs import JudgeSpec

_STATES: dict[str, BatchState] = {
    "validating": "pending",
    "in_progress": "running",
    "finalizing": "running",
    "cancelling": "running",
    "completed": "done",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}

#: Error-file codes of requests that never ran (asked again next time, status ``not_sent``).
_NEVER_RUN = frozenset({"batch_expired", "batch_cancelled"})

#: How far back (seconds before the intent) ``find_lost`` looks, for clock skew.
CLOCK_SKEW_S = 300.0


class OpenAIBatchProvider:
    """The OpenAI Batch API for one judge spec (model, base_url, key)."""

    name = "openai"

    def __init__(
        self, spec: JudgeSpec, *, api_key: str | None = None, client: openai.OpenAI | None = None,
        max_retries: int = 2,
    ) -> None:
        self.spec = spec
        # Kept to redact it from errors: every SDK call below leaves through ``sdk_boundary``.
        self._api_key = api_key if client is not None else resolve_api_key(spec, api_key)
        self.client = client or openai.OpenAI(
            api_key=self._api_key or "EMPTY", base_url=spec.base_url, max_retries=max_retries,
            timeout=spec.timeout_s,
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBatchProvider(judge={self.spec.name!r}, base_url={str(self.client.base_url)!r})"

    # -- submit --------------------------------------------------------------------------------

    @sdk_boundary(openai, "OpenAI batch upload")
    def upload(self, chunk: Chunk) -> str | None:
        with open(chunk.path, "rb") as fh:  # the SDK streams an open file handle
            file = self.client.files.create(file=(chunk.path.name, fh), purpose="batch")
        return file.id

    @sdk_boundary(openai, "OpenAI batch create")
    def create(self, chunk: Chunk, input_file_id: str | None, metadata: dict[str, str]) -> Submission:
        if input_file_id is None:
            raise ValueError("OpenAI batches need an uploaded input file")
        batch = self.client.batches.create(
            input_file_id=input_file_id, endpoint=OPENAI_ENDPOINT, completion_window="24h",
            metadata=metadata,
        )
        return Submission(batch_id=batch.id, input_file_id=input_file_id, created_at=float(batch.created_at))

    @sdk_boundary(openai, "OpenAI batch list")
    def find_lost(
        self, chunk: Chunk, metadata: dict[str, str], since: float, claimed: set[str]
    ) -> str | None:
        """Newest-first listing until batches older than the intent: match on the metadata."""
        for batch in self.client.batches.list(limit=100):
            if batch.created_at < since - CLOCK_SKEW_S:
                break
            meta = batch.metadata or {}
            if batch.id not in claimed and all(meta.get(k) == v for k, v in metadata.items()):
                return batch.id
        return None

    # -- poll ----------------------------------------------------------------------------------

    @sdk_boundary(openai, "OpenAI batch status")
    def poll_once(self, batch_id: str) -> BatchStatus:
        batch = self.client.batches.retrieve(batch_id)
        counts = batch.request_counts
        total = counts.total if counts else 0
        done_ok = counts.completed if counts else 0
        failed = counts.failed if counts else 0
        state = _STATES.get(batch.status, "running")
        error = None
        if batch.errors and batch.errors.data:
            error = "; ".join(
                f"{e.code or 'error'}: {e.message or ''}".strip() for e in batch.errors.data
            )
            error = redact(error)[:500]
        return BatchStatus(
            batch_id=batch.id, state=state, provider_status=batch.status, total=total,
            succeeded=done_ok, errored=failed,
            processing=max(0, total - done_ok - failed) if not _final(state) else 0,
            expired=max(0, total - done_ok - failed) if state == "expired" else 0,
            cancelled=max(0, total - done_ok - failed) if state == "cancelled" else 0,
            output_file_id=batch.output_file_id, error_file_id=batch.error_file_id, error=error,
        )

    # -- collect -------------------------------------------------------------------------------

    @sdk_boundary(openai, "OpenAI batch results download")
    def collect(self, status: BatchStatus) -> Iterator[ResultItem | BadLine]:
        """Every line of the output file, then of the error file; a line that cannot be read is
        a ``BadLine`` naming the batch, the file and the line number."""
        for kind, file_id in (("output", status.output_file_id), ("error", status.error_file_id)):
            if not file_id:
                continue
            with self.client.files.with_streaming_response.content(file_id) as response:
                yield from read_lines(response.iter_lines(), f"batch {status.batch_id} {kind} file {file_id}",
                                      _result_item)

    @sdk_boundary(openai, "OpenAI batch cancel")
    def cancel(self, batch_id: str) -> None:
        self.client.batches.cancel(batch_id)


def _final(state: BatchState) -> bool:
    return state in ("done", "failed", "expired", "cancelled")


def _result_item(line: dict[str, Any], where: str = "") -> ResultItem:
    """One output/error file line as a ``ResultItem`` (HTTP-level or batch-level errors kept,
    with the kind of failure: an invalid request is final, the rest is asked again)."""
    cid = str(line.get("custom_id"))
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, dict) and response.get("status_code") == 200 and not error:
        body = response.get("body") or {}
        try:
            reply = parse_openai_reply(body)
        except Exception as exc:  # noqa: BLE001 - a malformed body is that request's failure
            return ResultItem(cid, error=redact(f"malformed reply ({where}): {exc}")[:500],
                              error_status="error", where=where)
        return ResultItem(cid, text=reply.text, input_tokens=reply.input_tokens,
                          output_tokens=reply.output_tokens, where=where)
    if isinstance(response, dict):
        body = response.get("body") or {}
        err = body.get("error") if isinstance(body, dict) else None
        msg = err.get("message") if isinstance(err, dict) else redact(str(body))[:200]  # redact before cutting
        code = response.get("status_code")
        return ResultItem(cid, error=redact(f"HTTP {code}: {msg}")[:500],
                          error_status=status_for_http(code), where=where)
    if isinstance(error, dict):
        code = error.get("code") or "error"
        return ResultItem(cid, error=redact(f"{code}: {error.get('message') or ''}".strip())[:500],
                          error_status="not_sent" if code in _NEVER_RUN else "error", where=where)
    return ResultItem(cid, error=f"no response and no error in the batch output ({where})",
                      error_status="error", where=where)
