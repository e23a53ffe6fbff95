"""The data contracts every stage of judgeflow agrees on.

Two views of the same records live here:

* pydantic models (``InputRow``, ``Judgment``, ``PreferencePair`` ...) document the records and
  validate them at the edges (the Python API, config files, tests);
* polars schemas (``ROWS_SCHEMA``, ``JUDGMENTS_SCHEMA``, ``PAIRS_SCHEMA``, ``QUARANTINE_SCHEMA``)
  are what the hot paths actually pass around, so that no stage loops over rows in Python to
  build pydantic objects.

Keep the two in step: ``tests/test_schemas.py`` checks that the field names match.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator


class Candidate(BaseModel):
    """One candidate response to an instruction, with the model that wrote it when known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    model: str | None = None


class InputRow(BaseModel):
    """One instruction with 1..n candidate responses: the unit judgeflow judges.

    ``id`` is stable: the one given in the source file, or ``content_hash`` of the content.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    instruction: str = Field(min_length=1)
    responses: list[Candidate] = Field(default_factory=list)
    reference: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("instruction")
    @classmethod
    def _instruction_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("instruction is empty")
        return value


Verdict = Literal["A", "B", "tie"]
JudgmentStatus = Literal["ok", "failed", "error", "not_sent"]  # see judgeflow.judging.records
JudgeKind = Literal["absolute", "relative", "pairwise"]


class Judgment(BaseModel):
    """One judge's verdict on one item of one row.

    * absolute judging: ``candidate_a`` is the graded candidate's index, ``score`` is set;
    * relative/pairwise judging: ``candidate_a``/``candidate_b`` are the candidate indices in the
      order they were *shown* to the judge; ``verdict`` is "A" or "B" in that shown order and
      ``preferred`` is the winning candidate's index (order-independent).
    A failed judgment keeps ``raw_output`` and ``error`` so nothing is guessed or lost.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str
    row_id: str
    judge: str
    kind: JudgeKind
    candidate_a: int
    candidate_b: int | None = None
    order: Literal["AB", "BA"] | None = None
    score: float | None = None
    verdict: Verdict | None = None
    preferred: int | None = None
    feedback: str | None = None
    raw_output: str | None = None
    status: JudgmentStatus = "ok"
    error: str | None = None
    attempts: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    judge_model: str | None = None
    template_hash: str | None = None
    spec_hash: str | None = None
    content_hash: str | None = None


class PreferencePair(BaseModel):
    """A TRL/DPO-ready preference pair with its evidence and provenance."""

    model_config = ConfigDict(extra="forbid")

    row_id: str
    prompt: str
    chosen: str
    rejected: str
    chosen_index: int
    rejected_index: int
    chosen_model: str | None = None
    rejected_model: str | None = None
    chosen_score: float | None = None
    rejected_score: float | None = None
    margin: float | None = None
    agreement: float | None = None
    judges: list[str] = Field(default_factory=list)
    feedback: str | None = None
    judge_models: list[str] = Field(default_factory=list)
    template_hashes: list[str] = Field(default_factory=list)
    run_id: str | None = None


class QuarantineRecord(BaseModel):
    """Why one input row was set aside: where it came from, which field, and why."""

    model_config = ConfigDict(extra="forbid")

    source: str
    source_index: int
    row_id: str | None = None
    field: str
    reason: str
    raw: str | None = None


# ---------------------------------------------------------------------------------------------
# polars schemas: what the stages actually exchange
# ---------------------------------------------------------------------------------------------

ROWS_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.String(),
    "instruction": pl.String(),
    "responses": pl.List(pl.String()),
    "models": pl.List(pl.String()),  # same length as responses; null where unknown
    "reference": pl.String(),
    "metadata": pl.String(),  # JSON object as text
    "source_index": pl.Int64(),  # 0-based line (JSONL/CSV) or row index (Parquet) in the source
    "content_hash": pl.String(),  # hash of instruction, responses and reference
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "source_index": pl.Int64(),
    "row_id": pl.String(),
    "field": pl.String(),
    "reason": pl.String(),
    "raw": pl.String(),
}

JUDGMENTS_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "row_id": pl.String(),
    "judge": pl.String(),
    "kind": pl.String(),
    "candidate_a": pl.Int32(),
    "candidate_b": pl.Int32(),
    "order": pl.String(),
    "score": pl.Float64(),
    "verdict": pl.String(),
    "preferred": pl.Int32(),
    "feedback": pl.String(),
    "raw_output": pl.String(),
    "status": pl.String(),
    "error": pl.String(),
    "attempts": pl.Int32(),
    "input_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "cost_usd": pl.Float64(),
    "judge_model": pl.String(),
    "template_hash": pl.String(),
    "spec_hash": pl.String(),
    "content_hash": pl.String(),
}

PAIRS_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.String(),
    "prompt": pl.String(),
    "chosen": pl.String(),
    "rejected": pl.String(),
    "chosen_index": pl.Int32(),
    "rejected_index": pl.Int32(),
    "chosen_model": pl.String(),
    "rejected_model": pl.String(),
    "chosen_score": pl.Float64(),
    "rejected_score": pl.Float64(),
    "margin": pl.Float64(),
    "agreement": pl.Float64(),
    "judges": pl.List(pl.String()),
    "feedback": pl.String(),
    "judge_models": pl.List(pl.String()),
    "template_hashes": pl.List(pl.String()),
    "run_id": pl.String(),
}


def content_hash(instruction: str, responses: list[str], reference: str | None) -> str:
    """Stable id of a row's content: the same text always gets the same id (16 hex chars).

    Used as the row id when the source gives none, and as the cache key of judgments.
    The vectorised twin used on whole frames lives in ``judgeflow.loading``; both must agree,
    which ``tests/test_schemas.py`` checks.
    """
    payload = orjson.dumps([instruction, responses, reference])
    return hashlib.sha256(payload).hexdigest()[:16]


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty DataFrame with ``schema``: what a stage returns when it has nothing to say."""
    return pl.DataFrame(schema=schema)
