"""The reliability suite: a fault-free reference build, then faulted builds killed and restarted.

``run_suite(quick=...)`` returns the summary dict that ``python -m benchmarks.reliability`` prints
as its last line. Everything external (simulator, S3, Prefect API) lives in this process; each
build is ``judgeflow run CONFIG.yaml`` in a subprocess, killed with SIGKILL by ``crashes``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.reliability import crashes, invariants, scenario, secrets_scan, services
from benchmarks.reliability.attacks import AttackContext, run_attacks
from judgeflow.config import dump_config

JUDGEFLOW_BIN = Path(sys.executable).with_name("judgeflow")


@dataclass(frozen=True)
class SuiteSize:
    """How big a run is: rows per build, kills planned per build, kills wanted in all."""

    rows: int
    batch_requests: int
    chunk_size: int
    phases: tuple[str, ...]
    min_kills: int
    max_builds: int


QUICK = SuiteSize(rows=24, batch_requests=25, chunk_size=20,
                  phases=("submitting", "polling", "uploading"), min_kills=3, max_builds=2)
FULL = SuiteSize(rows=80, batch_requests=40, chunk_size=40, phases=crashes.PHASES,
                 min_kills=20, max_builds=6)


def _build_command(config_path: Path) -> list[str]:
    return [str(JUDGEFLOW_BIN), "run", str(config_path)]


def _config(size: SuiteSize, root: Path, input_path: Path, sim: Any, s3_endpoint: str,
            bucket: str) -> tuple[Path, list[Any]]:
    config = scenario.build_config(
        input_path=input_path, out_dir=root / "out", openai_base_url=sim.openai_base_url,
        anthropic_base_url=sim.anthropic_base_url, s3_endpoint=s3_endpoint, bucket=bucket,
        api_key_env=services.API_KEY_ENV, batch_requests=size.batch_requests,
        chunk_size=size.chunk_size, live_timeout_s=1.5,
    )
    path = root / "config.yaml"
    dump_config(config, path)
    return path, list(config.judges)


def run_suite(quick: bool = False, workdir: Path | None = None, prefect_api_url: str | None = None,
              prefect_home: Path | None = None, seed: int = 20261123, log: Any = None) -> dict[str, Any]:
    """Run the suite; returns the summary (see docs/reliability.md).

    ``prefect_api_url`` reuses a running Prefect server (its ``prefect_home`` is then scanned for
    the canaries too); by default the suite starts its own on a free loopback port.
    """
    size = QUICK if quick else FULL
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    root = Path(workdir or tempfile.mkdtemp(prefix="jf-reliability-"))
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    started = time.monotonic()
    violations: list[str] = []
    totals: Counter[str] = Counter()
    kills_by_phase: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    comparisons: list[dict[str, Any]] = []
    log_dirs: list[Path] = []
    buckets: list[str] = []
    builds = 0

    input_path = root / "rows.jsonl"
    lines_in = scenario.write_input(input_path, size.rows)
    hostile = scenario.hostile_row_ids(size.rows)

    with services.prefect_api(root / "prefect", prefect_api_url) as api, \
            services.s3_services() as s3:
        env = api.child_env()

        # 1. the fault-free reference build
        say("reliability: fault-free reference build ...")
        ref_root = root / "reference"
        ref_root.mkdir()
        buckets.append(s3.new_bucket("jf-rel-reference"))
        ref_sim = services.make_simulator(faulty=False)
        try:
            cfg, specs = _config(size, ref_root, input_path, ref_sim, s3.direct_url, buckets[-1])
            ref = crashes.run_with_kills(
                _build_command(cfg), env=env, cwd=services.REPO, log_dir=ref_root / "logs",
                phases=[], sim=ref_sim, proxy=s3.proxy, run_root=ref_root / "out", rng=rng,
                max_attempts=1)
            log_dirs.append(ref_root / "logs")
            if not ref.completed:
                raise RuntimeError(f"the fault-free build failed: see {ref.attempts[-1].log}")
            ref_dir = invariants.find_run_dir(ref_root / "out")
            ref_batches = invariants.ledger_batches(ref_dir.parent.parent / "_store" / "batches" / "ledger.json")
            for check in (invariants.check_rows(ref_dir, lines_in), invariants.check_duplicates(ref_dir),
                          invariants.check_verdicts(ref_dir, specs, hostile)):
                violations += [f"reference: {v}" for v in check.violations]
        finally:
            ref_sim.stop()
        say(f"reliability: reference done in {ref.attempts[-1].seconds:.1f}s; {ref_batches['round1']} "
            f"round-1 batches")

        # 2. faulted builds, killed and restarted
        crashes_total = crashes_survived = unexpected = 0
        while crashes_total < size.min_kills and builds < size.max_builds:
            builds += 1
            trial_root = root / f"build-{builds:02d}"
            trial_root.mkdir()
            bucket = s3.new_bucket(f"jf-rel-build-{builds:02d}")
            buckets.append(bucket)
            sim = services.make_simulator(faulty=True, seed=builds)
            s3_before = s3.proxy.snapshot()
            try:
                cfg, specs = _config(size, trial_root, input_path, sim, s3.proxy.url, bucket)

                def after_kill(attempt: crashes.Attempt, bucket: str = bucket) -> None:
                    check = invariants.check_s3_manifests(s3.client(), bucket)
                    violations.extend(f"after kill {attempt.index} ({attempt.trigger}): {v}"
                                      for v in check.violations)

                say(f"reliability: build {builds}: kills planned at {list(size.phases)} ...")
                run = crashes.run_with_kills(
                    _build_command(cfg), env=env, cwd=services.REPO, log_dir=trial_root / "logs",
                    phases=list(size.phases), sim=sim, proxy=s3.proxy, run_root=trial_root / "out",
                    rng=rng, after_kill=after_kill)
                log_dirs.append(trial_root / "logs")
                crashes_total += run.kills
                unexpected += len(run.unexpected_failures)
                for a in run.attempts:
                    if a.killed:
                        kills_by_phase[f"{a.trigger}"] += 1
                violations += [f"build {builds}: attempt {a.index} failed on its own (rc {a.returncode}), "
                               f"log {a.log}" for a in run.unexpected_failures]
                say(f"reliability: build {builds}: {run.kills} kills, {len(run.attempts)} starts, "
                    f"completed={run.completed} "
                    f"({', '.join(f'{a.trigger}->{a.phase_seen}' for a in run.attempts if a.killed)})")
                if not run.completed:
                    violations.append(f"build {builds} never completed after {len(run.attempts)} starts")
                    continue
                crashes_survived += run.kills
                run_dir = invariants.find_run_dir(trial_root / "out")
                stats = sim.stats()
                for name, value in stats.get("faults", {}).items():
                    faults[f"sim_{name}"] += int(value)
                checks = {
                    "rows": invariants.check_rows(run_dir, lines_in),
                    "duplicates": invariants.check_duplicates(run_dir),
                    "batches": invariants.check_batches(
                        stats, run_dir.parent.parent / "_store" / "batches" / "ledger.json",
                        ref_batches["round1"]),
                    "s3": invariants.check_s3_manifests(s3.client(), bucket),
                    "published": invariants.check_published_is_local(s3.client(), bucket, run_dir),
                    "reference": invariants.compare_with_reference(run_dir, ref_dir),
                    "verdicts": invariants.check_verdicts(run_dir, specs, hostile),
                }
                for name, check in checks.items():
                    violations += [f"build {builds} {name}: {v}" for v in check.violations]
                totals.update({k: checks["rows"].numbers[k] for k in ("rows_in", "judged", "quarantined", "failed")})
                totals["duplicates"] += sum(checks["duplicates"].numbers.values())
                totals["double_submissions"] += checks["batches"].numbers["double_submissions"]
                totals["partial_manifests"] += checks["s3"].numbers["partial"]
                totals["verdicts_checked"] += checks["verdicts"].numbers["verdicts_checked"]
                totals["hostile_verdicts_checked"] += checks["verdicts"].numbers["hostile_verdicts_checked"]
                totals["verdicts_misparsed"] += checks["verdicts"].numbers["verdicts_misparsed"]
                totals["judge_steered_by_content"] += checks["verdicts"].numbers["judge_steered"]
                totals["judgments_differing_from_reference"] += checks["reference"].numbers["judgments_differing"]
                totals["judgments_failed_after_retries"] += checks["reference"].numbers["judgments_failed_after_retries"]
                totals["batch_reasks_of_unparseable"] += checks["batches"].numbers["deliberate_reasks"]
                totals["live_bodies_answered_twice"] += int(stats.get("duplicate_successes", 0))
                comparisons.append(checks["reference"].numbers | {"build": builds})
            finally:
                sim.stop()
                after = s3.proxy.snapshot()
                for key in ("fault_503", "fault_reset", "fault_reset_after"):
                    faults[f"s3_{key}"] += after.get(key, 0) - s3_before.get(key, 0)

        # 3. targeted attacks (benchmarks/reliability/attacks): one weakness each
        say("reliability: targeted attacks ...")

        def attack_context(name: str) -> AttackContext:
            folder = root / "attacks" / name
            folder.mkdir(parents=True, exist_ok=True)
            return AttackContext(root=folder, env=env, s3=s3, quick=quick, say=say)

        attacks = run_attacks(attack_context)
        for name, result in attacks.items():
            violations += [f"attack {name}: {v}" for v in result.violations]
            log_dirs += result.scan_dirs
            buckets += result.buckets
            say(f"reliability: attack {name}: tried {result.tried}, {len(result.violations)} violations")

        # 4. secrets: logs, files, objects, Prefect logs/artifacts/runs, the server's database
        say("reliability: scanning for the canary credentials ...")
        canaries = services.CANARIES
        n_files, found = secrets_scan.scan_files([*log_dirs, *(root.glob("*/out")), root / "prefect",
                                                  *([prefect_home] if prefect_home else [])],
                                                 canaries)
        n_objects = 0
        for bucket in buckets:
            n, hits = secrets_scan.scan_bucket(s3.client(), bucket, canaries)
            n_objects += n
            found += hits
        prefect_counts, hits = secrets_scan.scan_prefect(api.api_url, canaries)
        found += hits
        violations += [f"secret leak: {f}" for f in found]

    summary: dict[str, Any] = {
        "suite": "quick" if quick else "full",
        "rows_in": totals["rows_in"],
        "judged": totals["judged"],
        "quarantined": totals["quarantined"],
        "failed": totals["failed"],
        "duplicates": totals["duplicates"],
        "double_submissions": totals["double_submissions"],
        "crashes": crashes_total,
        "crashes_survived": crashes_survived,
        "secrets_found": len(found),
        "partial_manifests": totals["partial_manifests"],
        "verdicts_misparsed": totals["verdicts_misparsed"],
        "judge_steered_by_content": totals["judge_steered_by_content"],
        "judgments_differing_from_reference": totals["judgments_differing_from_reference"],
        "unexpected_failures": unexpected,
        "builds": builds,
        "rows_per_build": lines_in,
        "kills_by_phase": dict(kills_by_phase),
        "faults_injected": dict(faults),
        "judgments_failed_after_retries": totals["judgments_failed_after_retries"],
        "batch_reasks_of_unparseable": totals["batch_reasks_of_unparseable"],
        "live_answers_paid_again": totals["live_bodies_answered_twice"],
        "verdicts_checked": totals["verdicts_checked"],
        "hostile_verdicts_checked": totals["hostile_verdicts_checked"],
        "reference_comparison": comparisons,
        "attacks": {name: {"tried": r.tried, "violations": len(r.violations), **r.numbers}
                    for name, r in attacks.items()},
        "scanned": {"files": n_files, "s3_objects": n_objects, **prefect_counts},
        "seconds": round(time.monotonic() - started, 1),
        "workdir": str(root),
        "violations": violations[:50],
    }
    summary["ok"] = (not violations and crashes_total >= size.min_kills
                     and crashes_total == crashes_survived and builds > 0)
    return summary
