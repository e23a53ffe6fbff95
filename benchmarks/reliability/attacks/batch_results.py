"""Batch results that lie, and a ledger cut short: the Batch-API path must lose one request per
bad line, never the batch, and never pay twice.

Real batch judging (``judgeflow.batch.runner.run_batch_judges``, the official SDKs, real HTTP to
the provider simulator), for OpenAI and for Anthropic:

1. **result lines**: the simulator writes invalid JSON lines, lines for custom_ids never sent,
   identical duplicates and duplicates with a different answer into the first batches' result
   files (``max_rounds`` 1, so nothing is asked again within the run). The run must end; every
   readable answer must be collected with the score the simulator gave; the requests of bad and
   conflicting lines must end ``error`` (asked again), never ``ok`` with a wrong answer and never
   final; the ledger must count every anomaly the simulator injected, each naming its batch
   and line.
2. **second run**: the answers go into a judgment store, and the store's pending requests are
   judged again: exactly the bad and conflicting ones are sent, they end ``ok``, and nothing is
   paid twice (the simulator's double-payment counters). A third run sends nothing.
3. **ledger cut short**: a fresh build submits its batches, then its ledger is truncated (for
   OpenAI its previous version is deleted too: nothing readable is left) before the run that
   polls and collects. The ledger must be named in the log, set aside as ``*.corrupt-*`` and
   recovered, and no batch created again (OpenAI finds its batches by their metadata; Anthropic
   from the readable part and the previous version).

Before issue 13's fix the first run failed with a bare ``JSONDecodeError`` (bad line) or
``BatchMismatchError`` (unknown custom_id) on every re-run, a conflicting duplicate was decided
by whichever line came last, and the truncated ledger failed with a ``JSONDecodeError`` that
named no file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import polars as pl

from benchmarks.reliability import scenario, services
from benchmarks.reliability.attacks import AttackContext, AttackResult, attack
from judgeflow.api import load
from judgeflow.batch.runner import BatchWorkspace, anomaly_counts, make_provider, run_batch_judges, submit_judge
from judgeflow.judging.records import JudgmentSink
from judgeflow.simulator import Simulator, SimulatorConfig, expected_score
from judgeflow.specs import BatchSettings, JudgeSpec, expand_requests
from judgeflow.store import JudgmentStore

FAST = {"batch_validating_s": 0.05, "batch_in_progress_s": 0.25, "batch_finalizing_s": 0.05,
        "batch_cancel_s": 0.05}
LINE_FAULTS = {"batch_bad_line_rate": 0.15, "batch_unknown_id_rate": 0.1, "batch_duplicate_rate": 0.1,
               "batch_conflict_rate": 0.15}
PER_BATCH = 10
#: anomaly kind in the ledger -> the simulator's fault counter for it
KINDS = {"invalid_line": "batch_bad_lines", "unknown_custom_id": "batch_unknown_custom_ids",
         "duplicate_custom_id": "batch_duplicate_lines", "conflicting_custom_id": "batch_conflicting_duplicates"}
PROVIDERS = ("openai", "anthropic")
#: A seed whose draws inject every kind of line fault for both providers, quick or not.
SEED = 23


def make_spec(sim: Simulator, provider: str, max_rounds: int = 1) -> JudgeSpec:
    return JudgeSpec(
        name=f"attack-{provider}-batch", kind="absolute", provider=provider, mode="batch",
        model="gpt-4o-mini" if provider == "openai" else "claude-3-5-haiku-latest",
        base_url=sim.openai_base_url if provider == "openai" else sim.anthropic_base_url,
        api_key_env=services.API_KEY_ENV, use_reference=False,
        batch=BatchSettings(max_requests_per_batch=PER_BATCH, poll_initial_s=0.05, poll_max_s=0.2,
                            poll_backoff=1.5, deadline_s=120.0, max_rounds=max_rounds),
    )


@contextmanager
def simulator(**config: Any) -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig.model_validate({"require_api_key": services.CANARY_API_KEY, **FAST, **config}))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@contextmanager
def captured(logger: str) -> Iterator[list[str]]:
    """The messages ``logger`` emits at WARNING and above while the block runs."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Keep(logging.WARNING)
    log = logging.getLogger(logger)
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


def wrong_scores(rows: pl.DataFrame, frame: pl.DataFrame) -> int:
    """ok judgments whose score is not the one the simulator gives that candidate."""
    texts = {(r["row_id"], k): t for r in rows.iter_rows(named=True) for k, t in enumerate(r["responses"])}
    return sum(1 for r in frame.filter(pl.col("status") == "ok").iter_rows(named=True)
               if r["score"] != expected_score(texts[(r["row_id"], r["candidate_a"])]))


def result_lines(ctx: AttackContext, provider: str, rows: pl.DataFrame, seed: int) -> tuple[int, list[str], dict[str, int]]:
    """Steps 1 and 2 for one provider: (requests tried, violations, numbers)."""
    say, violations, numbers = ctx.say, [], {}
    folder = ctx.root / provider
    n_batches = -(-len(expand_requests(rows, make_spec_for_count(provider))) // PER_BATCH)
    with simulator(seed=seed, batch_line_faults_first_n=n_batches, **LINE_FAULTS) as sim:
        spec = make_spec(sim, provider)
        providers = {spec.name: make_provider(spec, api_key=services.CANARY_API_KEY)}
        requests = expand_requests(rows, spec)
        ws = BatchWorkspace.at(folder / "work")
        try:
            first = run_batch_judges(rows, [spec], ws.root, folder / "out1", providers=providers)[spec.name]
        except Exception as exc:  # noqa: BLE001 - the finding itself
            return requests.height, [f"{provider}: the run with bad result lines failed: {type(exc).__name__}: "
                                     f"{str(exc)[:200]}"], numbers
        faults = sim.stats()["faults"]
        injected = {kind: int(faults.get(counter, 0)) for kind, counter in KINDS.items()}
        counted = anomaly_counts(ws)
        numbers |= {f"{provider}_{kind}_injected": n for kind, n in injected.items()}
        numbers |= {f"{provider}_{kind}_counted": int(counted.get(kind, 0)) for kind in KINDS}
        unusable = injected["invalid_line"] + injected["conflicting_custom_id"]
        ok = first.filter(pl.col("status") == "ok")
        violations += [f"{provider}: no {kind} was injected (the attack proves nothing there)"
                       for kind, n in injected.items() if not n]
        say(f"batch_results: {provider}: {requests.height} requests, injected {injected}; "
            f"{ok.height} ok, {first.height - ok.height} to ask again")
        if first.height != requests.height:
            violations.append(f"{provider}: {first.height} judgments for {requests.height} requests")
        if ok.height != requests.height - unusable:
            violations.append(f"{provider}: {ok.height} answers collected, expected {requests.height - unusable} "
                              f"({unusable} lines were unusable)")
        if (bad := wrong_scores(rows, first)):
            violations.append(f"{provider}: {bad} ok judgments carry an answer the judge did not give")
        statuses = set(first.filter(pl.col("status") != "ok")["status"].to_list())
        if statuses - {"error"}:
            violations.append(f"{provider}: unusable result lines recorded as {sorted(statuses)}, not 'error'")
        for kind in KINDS:
            if int(counted.get(kind, 0)) != injected[kind]:
                violations.append(f"{provider}: {injected[kind]} {kind} injected, {counted.get(kind, 0)} counted")
        entries = ws.ledger.entries().values()
        unnamed = [a for e in entries for a in e.anomalies
                   if not a.get("batch_id") or a["batch_id"] not in a["where"] or " line " not in a["where"]]
        if unnamed:
            violations.append(f"{provider}: {len(unnamed)} anomalies name no batch and line, e.g. {unnamed[0]}")

        # the second run: the store says what is pending (error and not_sent are asked again)
        store = JudgmentStore.at(folder / "store")
        with JudgmentSink(store.judge_dir(spec)) as sink:
            sink.extend(first.iter_rows(named=True))
        pending = store.pending(spec, requests)
        before = sim.stats()
        second = run_batch_judges(rows, [spec], ws.root, folder / "out2", providers=providers,
                                  pending={spec.name: pending["request_id"].to_list()})[spec.name]
        after = sim.stats()
        sent = int(after[f"{provider}_batch_requests"]) - int(before[f"{provider}_batch_requests"])
        numbers[f"{provider}_asked_again"] = sent
        if sent != unusable or pending.height != unusable:
            violations.append(f"{provider}: second run sent {sent} requests ({pending.height} pending), "
                              f"expected the {unusable} unusable ones")
        if not (second["status"] == "ok").all() or wrong_scores(rows, second):
            violations.append(f"{provider}: the requests asked again did not end ok with the judge's answers")
        with JudgmentSink(store.judge_dir(spec)) as sink:
            sink.extend(second.iter_rows(named=True))
        left = store.pending(spec, requests)
        third = run_batch_judges(rows, [spec], ws.root, folder / "out3", providers=providers,
                                 pending={spec.name: left["request_id"].to_list()})[spec.name]
        final = sim.stats()
        if left.height or third.height or final[f"{provider}_batches_created"] != after[f"{provider}_batches_created"]:
            violations.append(f"{provider}: a third run with nothing pending still sent something")
        paid_twice = int(final["custom_ids_paid_twice"]) + int(final["custom_ids_succeeded_twice"])
        numbers[f"{provider}_paid_twice"] = paid_twice
        if paid_twice:
            violations.append(f"{provider}: {paid_twice} custom_ids paid twice")
    return requests.height, violations, numbers


def make_spec_for_count(provider: str) -> JudgeSpec:
    """A spec only to count requests (no simulator yet): the request ids do not depend on it."""
    return JudgeSpec(name=f"attack-{provider}-batch", kind="absolute", provider=provider, mode="batch",
                     model="m", base_url="http://127.0.0.1:9", use_reference=False)


def truncated_ledger(ctx: AttackContext, provider: str, rows: pl.DataFrame) -> tuple[int, list[str], dict[str, int]]:
    """Step 3 for one provider: (batches at stake, violations, numbers)."""
    violations: list[str] = []
    folder = ctx.root / f"{provider}-ledger"
    with simulator(seed=3) as sim:
        spec = make_spec(sim, provider, max_rounds=3)
        providers = {spec.name: make_provider(spec, api_key=services.CANARY_API_KEY)}
        ws = BatchWorkspace.at(folder / "work")
        submitted = submit_judge(spec, rows, ws, providers[spec.name])  # ... and the build stops here
        ledger = ws.root / "ledger.json"
        if provider == "openai":  # nothing readable at all: only the batches' metadata is left
            ledger.with_name("ledger.json.prev").unlink(missing_ok=True)
            cut = 0.05
        else:
            cut = 0.5
        with open(ledger, "r+b") as fh:
            fh.truncate(int(ledger.stat().st_size * cut))
        made = int(sim.stats()[f"{provider}_batches_created"])
        with captured("judgeflow.batch") as said:
            try:
                out = run_batch_judges(rows, [spec], ws.root, folder / "out", providers=providers)[spec.name]
            except Exception as exc:  # noqa: BLE001 - the finding itself
                return len(submitted), [f"{provider}: the run after the ledger was cut failed: "
                                        f"{type(exc).__name__}: {str(exc)[:200]}"], {}
        stats = sim.stats()
    created = int(stats[f"{provider}_batches_created"]) - made
    aside = sorted(ws.root.glob("ledger.json.corrupt-*"))
    ctx.say(f"batch_results: {provider}: ledger cut to {cut:.0%} after {len(submitted)} batches were submitted; "
            f"{created} created again, set aside as {[p.name for p in aside]}")
    if created:
        violations.append(f"{provider}: {created} batches submitted again after the ledger was cut (paid twice)")
    if len(aside) != 1:
        violations.append(f"{provider}: the damaged ledger was not set aside ({len(aside)} *.corrupt-* files)")
    elif not any(str(ledger) in m and aside[0].name in m for m in said):
        violations.append(f"{provider}: no log line names the damaged ledger and where it was set aside")
    if not ws.ledger.recoveries():
        violations.append(f"{provider}: the ledger does not record its recovery")
    if not (out["status"] == "ok").all() or out.height != len(expand_requests(rows, spec)):
        violations.append(f"{provider}: the recovered build did not judge every request")
    if int(stats["custom_ids_paid_twice"]):
        violations.append(f"{provider}: {stats['custom_ids_paid_twice']} custom_ids paid twice")
    return len(submitted), violations, {f"{provider}_ledger_batches_created_again": created}


@attack("batch_results")
def batch_results(ctx: AttackContext) -> AttackResult:
    """Bad, unknown and duplicate result lines, a second run, and a truncated ledger."""
    ctx.root.mkdir(parents=True, exist_ok=True)
    rows = load(scenario.make_rows(10 if ctx.quick else 20)).rows
    tried, violations, numbers = 0, [], {}
    for provider in PROVIDERS:
        for step in (lambda p=provider: result_lines(ctx, p, rows, SEED),
                     lambda p=provider: truncated_ledger(ctx, p, rows)):
            n, found, nums = step()
            tried += n
            violations += found
            numbers |= nums
    return AttackResult(tried=tried, violations=violations, numbers=numbers, scan_dirs=[ctx.root])


__all__ = ["batch_results"]
