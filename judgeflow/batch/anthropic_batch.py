"""Anthropic Message Batches through the official ``anthropic`` SDK.

There is no file upload: ``messages.batches.create(requests=[...])`` takes the requests inline,
read from the chunk file just before the call. Anthropic batches carry no metadata, so a batch
whose creation never reached the ledger is found by request count and creation time after the
ledger's ``intent`` time (``find_lost``). Residual risk, documented in docs/batch.md: another
client creating a batch of exactly the same size on the same workspace in the same minutes could
be mistaken for ours; collection then checks that every custom_id it returns belongs to the chunk
and refuses the batch otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic

from judgeflow.batch.openai_batch import CLOCK_SKEW_S
from judgeflow.batch.requests import Chunk, iter_lines
from judgeflow.batch.result_lines import read_lines, status_for_anthropic_error
from judgeflow.batch.types import BadLine, BatchState, BatchStatus, ResultItem, Submission
from judgeflow.clients.base import redact
from judgeflow.clients.factory import resolve_api_key
from judgeflow.clients.sdk_errors import sdk_boundary
from judgeflow.specs import JudgeSpec


class AnthropicBatchProvider:
    """The Anthropic Message Batches API for one judge spec."""

    name = "anthropic"

    def __init__(
        self, spec: JudgeSpec, *, api_key: str | None = None,
        client: anthropic.Anthropic | None = None, max_retries: int = 2,
    ) -> None:
        self.spec = spec
        # Kept to redact it from errors: every SDK call below leaves through ``sdk_boundary``.
        self._api_key = api_key if client is not None else resolve_api_key(spec, api_key)
        self.client = client or anthropic.Anthropic(
            api_key=self._api_key or "EMPTY", base_url=spec.base_url,
            max_retries=max_retries, timeout=spec.timeout_s,
        )

    def __repr__(self) -> str:  # never show the key
        return f"AnthropicBatchProvider(judge={self.spec.name!r}, base_url={str(self.client.base_url)!r})"

    def upload(self, chunk: Chunk) -> str | None:
        return None  # requests travel inline with create

    @sdk_boundary(anthropic, "Anthropic batch create")
    def create(self, chunk: Chunk, input_file_id: str | None, metadata: dict[str, str]) -> Submission:
        batch = self.client.messages.batches.create(requests=list(iter_lines(chunk)))  # type: ignore[arg-type]
        return Submission(batch_id=batch.id, created_at=batch.created_at.timestamp())

    @sdk_boundary(anthropic, "Anthropic batch list")
    def find_lost(
        self, chunk: Chunk, metadata: dict[str, str], since: float, claimed: set[str]
    ) -> str | None:
        """The earliest unclaimed batch of ``chunk.count`` requests created after ``since``.

        Earliest, because a judge's chunks are created one after another in intent order.
        """
        best: tuple[float, str] | None = None
        for batch in self.client.messages.batches.list(limit=100):
            created = batch.created_at.timestamp()
            if created < since - CLOCK_SKEW_S:
                break  # newest first: everything after this is older
            if created < since - 1.0 or batch.id in claimed:
                continue
            c = batch.request_counts
            n = c.processing + c.succeeded + c.errored + c.canceled + c.expired
            if n == chunk.count and (best is None or created < best[0]):
                best = (created, batch.id)
        return best[1] if best else None

    @sdk_boundary(anthropic, "Anthropic batch status")
    def poll_once(self, batch_id: str) -> BatchStatus:
        batch = self.client.messages.batches.retrieve(batch_id)
        c = batch.request_counts
        state: BatchState
        state = "done" if batch.processing_status == "ended" else "running"  # canceling: running
        return BatchStatus(
            batch_id=batch.id, state=state, provider_status=batch.processing_status,
            total=c.processing + c.succeeded + c.errored + c.canceled + c.expired,
            succeeded=c.succeeded, errored=c.errored, processing=c.processing,
            expired=c.expired, cancelled=c.canceled,
        )

    @sdk_boundary(anthropic, "Anthropic batch results download")
    def collect(self, status: BatchStatus) -> Iterator[ResultItem | BadLine]:
        """Every line of the results stream, read one by one (not through the SDK's decoder,
        which stops at the first invalid line and loses the rest of the batch)."""
        with self.client.messages.batches.with_streaming_response.results(status.batch_id) as response:
            yield from read_lines(response.iter_lines(), f"batch {status.batch_id} results", _result_item)

    @sdk_boundary(anthropic, "Anthropic batch cancel")
    def cancel(self, batch_id: str) -> None:
        self.client.messages.batches.cancel(batch_id)


def _result_item(line: dict[str, Any], where: str) -> ResultItem | BadLine:
    """One results line (``{"custom_id", "result": {"type": ...}}``) as a ``ResultItem``."""
    cid = str(line["custom_id"])
    result = line.get("result")
    kind = result.get("type") if isinstance(result, dict) else None
    if kind == "succeeded":
        message = result.get("message") if isinstance(result, dict) else None
        try:
            content = message["content"]  # type: ignore[index]
            usage = message["usage"]  # type: ignore[index]
            text = "".join(b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text")
            tokens_in, tokens_out = int(usage["input_tokens"]), int(usage["output_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            return ResultItem(cid, error=redact(f"malformed message ({where}): {type(exc).__name__} {exc}")[:500],
                              error_status="error", where=where)
        return ResultItem(cid, text=text, input_tokens=tokens_in, output_tokens=tokens_out, where=where)
    if kind == "errored":
        outer = result.get("error") if isinstance(result, dict) else None
        err = outer.get("error") if isinstance(outer, dict) and isinstance(outer.get("error"), dict) else outer
        err_type = str(err.get("type", "error")) if isinstance(err, dict) else "error"
        msg = str(err.get("message", "")) if isinstance(err, dict) else ""
        return ResultItem(cid, error=redact(f"errored: {err_type}: {msg}")[:500],
                          error_status=status_for_anthropic_error(err_type), where=where)
    if kind in ("canceled", "expired"):
        return ResultItem(cid, error=kind, error_status="not_sent", where=where)
    return BadLine(where, f"a result of unknown type {kind!r}", cid)
