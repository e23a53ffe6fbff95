"""Hostile judge replies over real HTTP, through judgeflow's live judging path.

What a judge (or a candidate it quotes, or a gateway in between) can send back: the opposite
verdict quoted before the real one (``[RESULT]`` quotes, a fenced JSON draft, quoted JSON
objects), a megabyte of whitespace where forward-searching patterns backtrack quadratically
(``Score:`` + spaces, ``[RESULT:`` + spaces, whitespace inside and after a JSON object), and deep
or endless braces before the final JSON object. The simulator builds them on demand
(``judgeflow.simulator.hostile``): a tag in a candidate wraps the deterministic judge's verdict
in the shape, so the right answer is known.

For four judges (Prometheus absolute and relative, pairwise-JSON, a custom ``score_regex``) and
every shape that applies to each:

1. each reply is parsed in process at 16k characters, then at full size (1 MB; 256k when quick),
   timed: a reply over ``PARSE_LIMIT_S`` is a violation, and a shape already slow at 16k is not
   tried larger (the old parsers took hours at 1 MB; the attack stays bounded either way);
2. the full-size replies are served over HTTP by the simulator to ``judge_live``, while a ticker
   on the same event loop measures the longest stall: over ``PARSE_LIMIT_S`` is a violation;
3. every record must be ok on the first ask, hold the deterministic judge's verdict (never the
   quoted opposite one), and store the reply capped (head and tail, the cut said).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.reliability import services
from benchmarks.reliability.attacks import AttackContext, AttackResult, attack
from judgeflow.judging.live import judge_live, response_format_for
from judgeflow.judging.records import RAW_HEAD_CHARS, RAW_TAIL_CHARS, JudgmentSink, read_judgments
from judgeflow.parsing import ParseError, parse_reply
from judgeflow.prompts import render_requests
from judgeflow.schemas import content_hash
from judgeflow.simulator import hostile
from judgeflow.simulator.judge import answer, expected_verdict_text
from judgeflow.specs import JudgeSpec, expand_requests

PARSE_LIMIT_S = 1.0
PROBE_SIZE = 16_384
API_KEY = "sk-hostile-replies"
CUSTOM_TEMPLATE = "Grade the answer to: {{ instruction }}\nAnswer: {{ response }}\nEnd with [RESULT] and a number."


@dataclass(frozen=True)
class Case:
    """One judge and the hostile shapes it is sent."""

    label: str
    spec: JudgeSpec
    shapes: tuple[str, ...]


def cases(base_url: str) -> list[Case]:
    common: dict[str, Any] = {"provider": "openai-compatible", "base_url": base_url, "max_parse_retries": 1,
                              "concurrency": 8}
    return [
        Case("prometheus-absolute", JudgeSpec(name="hostile-abs", kind="absolute", **common),
             ("quotes", "score-spaces", "trailing-spaces")),
        Case("prometheus-relative", JudgeSpec(name="hostile-rel", kind="relative", **common),
             ("quotes", "result-colon-spaces", "trailing-spaces")),
        Case("pairwise-json", JudgeSpec(name="hostile-pw", kind="pairwise", template="pairwise-json", **common),
             ("fenced-flip", "quotes", "spaces-inside", "deep-braces", "deep-chain", "trailing-spaces")),
        Case("custom", JudgeSpec(name="hostile-custom", kind="absolute", template="custom",
                                 custom_template=CUSTOM_TEMPLATE, score_regex=r"\[RESULT\]\s*(\d+)", **common),
             ("quotes", "score-spaces", "trailing-spaces")),
    ]


def rows_for(case: Case, size: int) -> pl.DataFrame:
    """One row per shape, two candidates, both tagged (every reply about them is hostile)."""
    instructions, responses = [], []
    for i, shape in enumerate(case.shapes):
        tag = hostile.tag(shape, size)
        instructions.append(f"Explain topic {case.label}-{shape}-{i} in one sentence.")
        responses.append([f"A short answer about {shape} {i}. {tag}", f"A longer, careful answer about {shape} {i}. {tag}"])
    return pl.DataFrame(
        {
            "row_id": [f"{case.label}-{shape}" for shape in case.shapes],
            "instruction": instructions,
            "responses": responses,
            "reference": [None] * len(instructions),
            "content_hash": [content_hash(x, r, None) for x, r in zip(instructions, responses, strict=True)],
        },
        schema_overrides={"reference": pl.String},
    )


@dataclass
class Served:
    """A request, the reply the simulator serves for it, and the verdict that reply must give."""

    request_id: str
    row_id: str
    text: str
    want: str


def served(case: Case, rows: pl.DataFrame) -> list[Served]:
    requests = expand_requests(rows, case.spec)
    json_mode = response_format_for(case.spec) is not None
    out = []
    for request, prompt in zip(requests.iter_rows(named=True), render_requests(case.spec, rows, requests), strict=True):
        out.append(Served(request["request_id"], request["row_id"], answer(prompt.user, json_mode=json_mode),
                          expected_verdict_text(prompt.user)))
    return out


def check_parse(case: Case, replies: list[Served], violations: list[str]) -> tuple[float, set[str]]:
    """Parse each reply in process, timed; the slowest time, and the rows that went wrong."""
    slowest, bad = 0.0, set()
    for reply in replies:
        started = time.perf_counter()
        try:
            parsed = parse_reply(case.spec, reply.text)
            got = str(int(parsed.score)) if parsed.score is not None else parsed.verdict
        except ParseError as exc:
            got = f"ParseError: {exc.reason[:120]}"
        took = time.perf_counter() - started
        slowest = max(slowest, took)
        where = f"{case.label} {reply.row_id} ({len(reply.text):,} chars)"
        if took > PARSE_LIMIT_S:
            violations.append(f"{where}: parsing took {took:.1f} s (limit {PARSE_LIMIT_S:g} s)")
            bad.add(reply.row_id)
        if got != reply.want:
            violations.append(f"{where}: parsed {got!r}, the judge said {reply.want!r}")
            bad.add(reply.row_id)
    return slowest, bad


async def judge_watching_the_loop(spec: JudgeSpec, rows: pl.DataFrame, out: Path) -> tuple[Any, float]:
    """``judge_live`` over HTTP while a ticker measures the longest stall of the event loop."""
    stalled = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal stalled
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            stalled = max(stalled, now - last - 0.01)
            last = now

    watch = asyncio.create_task(ticker())
    try:
        with JudgmentSink(out) as sink:
            stats = await judge_live(spec, rows, expand_requests(rows, spec), sink, api_key=API_KEY)
    finally:
        done.set()
        await watch
    return stats, stalled


def check_records(case: Case, replies: list[Served], judged: pl.DataFrame, violations: list[str]) -> None:
    want = {r.request_id: r for r in replies}
    if judged.height != len(replies):
        violations.append(f"{case.label}: {judged.height} records for {len(replies)} requests")
    cap = RAW_HEAD_CHARS + RAW_TAIL_CHARS + 200
    for rec in judged.iter_rows(named=True):
        reply = want.get(rec["request_id"])
        where = f"{case.label} {rec['row_id']} (live)"
        if reply is None:
            violations.append(f"{where}: a record for a request never made")
            continue
        if rec["status"] != "ok" or rec["attempts"] != 1:
            violations.append(f"{where}: status {rec['status']} after {rec['attempts']} asks: {rec['error']}")
            continue
        got = str(int(rec["score"])) if rec["score"] is not None else rec["verdict"]
        if got != reply.want:
            violations.append(f"{where}: recorded {got!r}, the judge said {reply.want!r}")
        raw = rec["raw_output"] or ""
        if len(raw) > cap or (len(reply.text) > cap and "characters of this text" not in raw):
            violations.append(f"{where}: raw_output of {len(raw):,} chars stored for a {len(reply.text):,}-char reply")


@attack("hostile_replies")
def hostile_replies(ctx: AttackContext) -> AttackResult:
    size = 262_144 if ctx.quick else 1_048_576
    violations: list[str] = []
    numbers = {"replies_parsed": 0, "replies_over_http": 0, "hostile_chars_served": 0, "slowest_parse_ms": 0,
               "longest_loop_stall_ms": 0}
    sim = services.make_simulator(faulty=False)
    try:
        for case in cases(sim.openai_base_url):
            probe = served(case, rows_for(case, PROBE_SIZE))
            slowest, bad = check_parse(case, probe, violations)
            full_rows = rows_for(case, size)
            full = served(case, full_rows)
            full_ok = [r for r in full if r.row_id not in bad]
            slow_full, bad_full = check_parse(case, full_ok, violations)
            numbers["replies_parsed"] += len(probe) + len(full_ok)
            numbers["slowest_parse_ms"] = max(numbers["slowest_parse_ms"], round(1000 * max(slowest, slow_full)))
            live_rows = full_rows.filter(~pl.col("row_id").is_in(sorted(bad | bad_full)))
            if live_rows.height == 0:
                continue
            live = [r for r in full_ok if r.row_id not in bad_full]
            out = ctx.root / case.label
            stats, stalled = asyncio.run(judge_watching_the_loop(case.spec, live_rows, out))
            numbers["replies_over_http"] += stats.http_attempts
            numbers["hostile_chars_served"] += sum(len(r.text) for r in live)
            numbers["longest_loop_stall_ms"] = max(numbers["longest_loop_stall_ms"], round(1000 * stalled))
            if stalled > PARSE_LIMIT_S:
                violations.append(f"{case.label}: the event loop stalled {stalled:.1f} s while judging hostile replies")
            check_records(case, live, read_judgments(out).collect(), violations)
            ctx.say(f"hostile_replies: {case.label}: {len(live)} replies of ~{size:,} chars, slowest parse "
                    f"{1000 * max(slowest, slow_full):.1f} ms, loop stall {1000 * stalled:.0f} ms")
    finally:
        sim.stop()
    return AttackResult(tried=numbers["replies_parsed"] + numbers["replies_over_http"], violations=violations,
                        numbers=numbers, scan_dirs=[ctx.root])
