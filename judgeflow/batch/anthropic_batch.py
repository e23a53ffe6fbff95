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

import anthropic

from judgeflow.batch.openai_batch import CLOCK_SKEW_S
from judgeflow.batch.requests import Chunk, iter_lines
from judgeflow.batch.types import BatchState, BatchStatus, ResultItem, Submission
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
    def collect(self, status: BatchStatus) -> Iterator[ResultItem]:
        for item in self.client.messages.batches.results(status.batch_id):
            result = item.result
            if result.type == "succeeded":
                message = result.message
                text = "".join(b.text for b in message.content if getattr(b, "type", None) == "text")
                yield ResultItem(item.custom_id, text=text, input_tokens=message.usage.input_tokens,
                                 output_tokens=message.usage.output_tokens)
            elif result.type == "errored":
                err = getattr(result.error, "error", None)
                kind = getattr(err, "type", "error")
                msg = getattr(err, "message", "")
                yield ResultItem(item.custom_id, error=redact(f"errored: {kind}: {msg}")[:500])
            else:  # canceled | expired
                yield ResultItem(item.custom_id, error=result.type)

    @sdk_boundary(anthropic, "Anthropic batch cancel")
    def cancel(self, batch_id: str) -> None:
        self.client.messages.batches.cancel(batch_id)
