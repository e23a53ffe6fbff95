"""The provider-neutral view of a batch: its normalised status and one result per request.

OpenAI and Anthropic name their life cycles differently (``validating/in_progress/finalizing/
completed`` vs ``in_progress/canceling/ended``); the runner only needs to know whether to keep
waiting, whether there is anything to collect, and how many requests are where.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from judgeflow.batch.requests import Chunk

BatchState = Literal["pending", "running", "done", "failed", "expired", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"done", "failed", "expired", "cancelled"})


@dataclass(slots=True)
class BatchStatus:
    """One poll of one batch, in judgeflow's words.

    * ``pending``: accepted but not started (OpenAI ``validating``);
    * ``running``: being processed (also OpenAI ``finalizing`` and ``cancelling``);
    * ``done``: ended, results to collect (Anthropic ``ended`` always lands here, whatever
      happened to the single requests; the counts say how many expired or were cancelled);
    * ``failed``: the whole batch was refused (OpenAI failed validation): nothing ran;
    * ``expired`` / ``cancelled``: ended early, partial results to collect.
    """

    batch_id: str
    state: BatchState
    provider_status: str
    total: int = 0
    succeeded: int = 0
    errored: int = 0
    processing: int = 0
    expired: int = 0
    cancelled: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    error: str | None = None  # batch-level reason (failed validation)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def counts(self) -> dict[str, int]:
        return {
            "total": self.total, "succeeded": self.succeeded, "errored": self.errored,
            "processing": self.processing, "expired": self.expired, "cancelled": self.cancelled,
        }


#: What kind of failure a request's ``error`` is (``judgeflow.judging.records.FAILURE_STATUSES``):
#: ``failed`` the judge's own final answer (the request itself is invalid, e.g. too long),
#: ``error`` infrastructure (5xx, 429, auth, unreadable result line: asked again next run),
#: ``not_sent`` never run (cancelled, expired, deadline: asked again next run).
FailureStatus = Literal["failed", "error", "not_sent"]


@dataclass(slots=True)
class ResultItem:
    """One request's outcome: the reply text and tokens, or why there is none.

    ``where`` says which line of which result file it came from ("batch B output file F line
    12"), so a problem with it can be traced to the provider's bytes.
    """

    custom_id: str
    text: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None  # e.g. "errored: rate_limit_error: ...", "expired", "canceled"
    error_status: FailureStatus = "error"
    where: str = ""


@dataclass(slots=True)
class BadLine:
    """A result line that could not be read (invalid JSON, or not a result object).

    Only that line is lost: the request it belonged to (``custom_id`` when it could still be
    read from the broken text) fails with status ``error`` and is asked again.
    """

    where: str  # "batch B output file F line 12"
    problem: str
    custom_id: str | None = None


@dataclass(slots=True)
class Submission:
    """What ``submit`` created: the ids the ledger must record before any polling."""

    batch_id: str
    input_file_id: str | None = None
    created_at: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


class BatchProvider(Protocol):
    """One provider's Batch API, through its official SDK. All calls are synchronous: the
    runner polls many batches from threads (sleeping threads cost no CPU)."""

    name: str

    def upload(self, chunk: Chunk) -> str | None:
        """Upload the chunk's input file if the provider needs one; its id (or None)."""

    def create(self, chunk: Chunk, input_file_id: str | None, metadata: dict[str, str]) -> Submission:
        """Create the batch. Must be followed at once by a ledger write."""

    def find_lost(
        self, chunk: Chunk, metadata: dict[str, str], since: float, claimed: set[str]
    ) -> str | None:
        """A batch created for ``chunk`` whose creation never reached the ledger, or None."""

    def poll_once(self, batch_id: str) -> BatchStatus:
        """One status call. Transient errors raise the SDK's exceptions (see ``is_transient``)."""

    def collect(self, status: BatchStatus) -> Iterator[ResultItem | BadLine]:
        """Stream every result of an ended batch (successes and per-request errors); a line that
        cannot be read is a ``BadLine``, never an exception that loses the whole batch."""

    def cancel(self, batch_id: str) -> None:
        """Ask the provider to cancel (done requests stay billed and collectable)."""
