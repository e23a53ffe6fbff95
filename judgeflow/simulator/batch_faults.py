"""Faults in batch result files: invalid JSON lines, custom_ids never sent, duplicate lines.

Real result files are written by a provider's pipeline and read by a client that trusts them;
these faults check that one bad line costs one request, not the whole batch. Both providers'
batch modules hand their finished result lines here before the file is stored.

Each line gets one uniform draw (seeded by provider, batch sequence number and line index, so a
run is reproducible and a re-submission round redraws) and at most one fault. Extra lines
(duplicates, unknown custom_ids) go to the end of the file, where a naive reader lets the later
line win. An answer the client cannot use (its line is invalid, or it comes twice with
different answers) is not counted as paid, so re-asking it is not taken for double payment.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from judgeflow.simulator.state import SimState

CONFLICTING_TEXT = "On a second reading the response deserves another grade.\n[RESULT] 1"
"""The reply text of the conflicting copy of a successful result line."""


@dataclass(slots=True)
class ResultLine:
    """One result line as the provider would write it, before faults."""

    custom_id: str
    obj: dict[str, Any]
    paid: bool  # a success the provider bills
    conflict: Callable[[], dict[str, Any]] | None = None  # the same request answered differently


def line_faults_active(state: SimState, seq: int) -> bool:
    c = state.config
    rates = c.batch_bad_line_rate + c.batch_unknown_id_rate + c.batch_duplicate_rate + c.batch_conflict_rate
    return rates > 0 and (c.batch_line_faults_first_n == 0 or seq < c.batch_line_faults_first_n)


def _bad(data: bytes, n: int) -> bytes:
    """Invalid JSON: every other one cut in half (its custom_id still readable), else garbage."""
    if n % 2 == 0:
        return data[: max(1, len(data) // 2)]
    return b"\x1f\x8b<<not json: the line was lost in transit>>"


def write_lines(state: SimState, provider: str, seq: int, lines: list[ResultLine]) -> tuple[list[bytes], list[str]]:
    """The lines as they will be written (faults applied) and the custom_ids counted as paid."""
    if not line_faults_active(state, seq):
        return [orjson.dumps(line.obj) for line in lines], [line.custom_id for line in lines if line.paid]
    c = state.config
    rng = random.Random(f"{c.seed}:{provider}:{seq}:lines")
    e_bad = c.batch_bad_line_rate
    e_unknown = e_bad + c.batch_unknown_id_rate
    e_duplicate = e_unknown + c.batch_duplicate_rate
    e_conflict = e_duplicate + c.batch_conflict_rate
    out: list[bytes] = []
    tail: list[bytes] = []
    paid: list[str] = []
    for line in lines:
        data = orjson.dumps(line.obj)
        u = rng.random()
        if u < e_bad:
            out.append(_bad(data, state.faults["batch_bad_lines"]))
            state.faults["batch_bad_lines"] += 1
            continue
        out.append(data)
        if u < e_unknown:
            tail.append(orjson.dumps(dict(line.obj, custom_id=f"never-sent-{state.next_id('')}")))
            state.faults["batch_unknown_custom_ids"] += 1
        elif u < e_duplicate:
            tail.append(data)
            state.faults["batch_duplicate_lines"] += 1
        elif u < e_conflict and line.conflict is not None:
            tail.append(orjson.dumps(line.conflict()))
            state.faults["batch_conflicting_duplicates"] += 1
            continue  # two answers: the client must fail it, so it is not billed as usable
        if line.paid:
            paid.append(line.custom_id)
    return out + tail, paid


__all__ = ["CONFLICTING_TEXT", "ResultLine", "line_faults_active", "write_lines"]
