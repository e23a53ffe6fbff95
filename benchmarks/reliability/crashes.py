"""Run a build in a subprocess, SIGKILL it at chosen moments, start it again until it completes.

Each attempt gets one *trigger*: a condition on what the outside world can see of the build
(simulator counters, the S3 proxy's counters, files in the output folder) or a plain delay. When
it fires the build is killed with SIGKILL — no cleanup handlers, no atexit, exactly like an OOM
kill or a lost node. Triggers are named after the phase they aim at:

* ``startup``    a random delay of 0.5-4 s after start (importing, loading, planning);
* ``submitting`` right after the simulator created a new batch (the create/ledger window);
* ``live``       after N more live calls reached the simulator (mid live judging);
* ``polling``    after a few more batch status calls (batches in flight);
* ``writing``    as soon as this attempt (re)wrote a dataset file in the run folder;
* ``uploading``  after K more object PUTs went through the S3 proxy (mid publish).

A trigger that cannot fire any more (that phase is already done) simply lets the attempt finish.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeflow.simulator import Simulator
from judgeflow.testing.faulty_proxy import FaultyProxy

PHASES = ("startup", "submitting", "live", "polling", "writing", "uploading")


@dataclass
class Attempt:
    """One start of the build: how it ended and, if killed, at which trigger."""

    index: int
    trigger: str | None
    killed: bool
    returncode: int | None
    seconds: float
    log: str
    phase_seen: str | None = None  # what the build was observably doing when killed


@dataclass
class CrashRun:
    """All attempts of one build until it completed (or gave up)."""

    attempts: list[Attempt] = field(default_factory=list)
    completed: bool = False

    @property
    def kills(self) -> int:
        return sum(a.killed for a in self.attempts)

    @property
    def unexpected_failures(self) -> list[Attempt]:
        """Attempts that ended on their own with a non-zero status (not killed)."""
        return [a for a in self.attempts if not a.killed and a.returncode not in (0, None)]


def _stat_total(stats: dict[str, Any], *keys: str) -> int:
    return sum(int(stats.get(k, 0)) for k in keys)


def make_trigger(
    phase: str, rng: random.Random, sim: Simulator, proxy: FaultyProxy, run_root: Path,
    started_wall: float,
) -> Callable[[float], bool]:
    """A predicate ``fired(elapsed_s)`` for ``phase``, with baselines taken now."""
    stats = sim.stats()
    puts = proxy.snapshot().get("PUT", 0)
    if phase == "startup":
        delay = rng.uniform(0.5, 4.0)
        return lambda elapsed: elapsed >= delay
    if phase == "submitting":
        base = _stat_total(stats, "openai_batches_created", "anthropic_batches_created")
        return lambda _: _stat_total(sim.stats(), "openai_batches_created", "anthropic_batches_created") > base
    if phase == "live":
        base = _stat_total(stats, "chat_completions", "messages")
        n = rng.randint(5, 40)
        return lambda _: _stat_total(sim.stats(), "chat_completions", "messages") >= base + n
    if phase == "polling":
        base = _stat_total(stats, "batch_status_calls")
        n = rng.randint(2, 8)
        return lambda _: _stat_total(sim.stats(), "batch_status_calls") >= base + n
    if phase == "writing":
        def wrote(_: float) -> bool:
            for name in ("judgments.parquet", "pairs.parquet", "failed_rows.parquet", "report.html"):
                for path in run_root.glob(f"*/*/*/{name}"):
                    try:
                        if path.stat().st_mtime > started_wall:
                            return True
                    except FileNotFoundError:
                        continue
            return False
        return wrote
    if phase == "uploading":
        k = rng.randint(1, 6)
        return lambda _: proxy.snapshot().get("PUT", 0) >= puts + k
    raise ValueError(f"unknown phase {phase!r}")


def observed_phase(before: dict[str, Any], after: dict[str, Any], puts_before: int, puts_after: int) -> str:
    """A coarse label of what the build was doing in the last moments before the kill."""
    if puts_after > puts_before:
        return "uploading"
    if _stat_total(after, "openai_batches_created", "anthropic_batches_created") > _stat_total(
            before, "openai_batches_created", "anthropic_batches_created"):
        return "submitting"
    if _stat_total(after, "chat_completions", "messages") > _stat_total(before, "chat_completions", "messages"):
        return "live"
    if _stat_total(after, "batch_status_calls") > _stat_total(before, "batch_status_calls"):
        return "polling"
    return "other"


def run_with_kills(
    command: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log_dir: Path,
    phases: list[str],
    sim: Simulator,
    proxy: FaultyProxy,
    run_root: Path,
    rng: random.Random,
    attempt_timeout_s: float = 300,
    max_attempts: int = 40,
    after_kill: Callable[[Attempt], None] | None = None,
) -> CrashRun:
    """Start ``command``; kill it at each of ``phases`` in turn; restart until it exits 0.

    After the planned kills, attempts run undisturbed. An attempt that fails on its own is
    recorded (``unexpected_failures``) and the build is started again, like a scheduler would.
    ``after_kill`` is called after each kill (the suite checks the S3 manifest there).
    """
    result = CrashRun()
    plan = list(phases)
    log_dir.mkdir(parents=True, exist_ok=True)
    for index in range(max_attempts):
        phase = plan.pop(0) if plan else None
        log_path = log_dir / f"attempt-{index:02d}.log"
        started_wall = time.time()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        fired = (make_trigger(phase, rng, sim, proxy, run_root, started_wall)
                 if phase else (lambda _: False))
        t0 = time.monotonic()
        killed = False
        window: list[tuple[float, dict[str, Any], int]] = []
        seen = None
        while proc.poll() is None:
            elapsed = time.monotonic() - t0
            if elapsed > attempt_timeout_s:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise TimeoutError(f"build attempt {index} hung for {attempt_timeout_s:.0f}s: {log_path}")
            window.append((elapsed, sim.stats(), proxy.snapshot().get("PUT", 0)))
            window = [w for w in window if elapsed - w[0] <= 1.0]
            if fired(elapsed):
                os.killpg(proc.pid, signal.SIGKILL)  # the whole session: no child survives
                proc.wait()
                killed = True
                _, before, puts_before = window[0]
                seen = observed_phase(before, sim.stats(), puts_before, proxy.snapshot().get("PUT", 0))
                break
            time.sleep(0.05)
        attempt = Attempt(index=index, trigger=phase, killed=killed, returncode=proc.returncode,
                          seconds=round(time.monotonic() - t0, 2),
                          log=str(log_path), phase_seen=seen)
        result.attempts.append(attempt)
        if killed:
            if after_kill is not None:
                after_kill(attempt)
            continue
        if proc.returncode == 0:
            result.completed = True
            return result
        if phase:  # the planned kill did not happen: try the same phase on the next start
            plan.insert(0, phase)
    return result
