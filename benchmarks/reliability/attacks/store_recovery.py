"""Store recovery: a build whose every request failed, and a judgment store with corrupt parts.

Three real builds of the same config (``judgeflow run CONFIG.yaml`` subprocesses reporting to
the suite's Prefect API), two live judges (OpenAI-compatible and Anthropic), small chunks so
each judge's answers sit in several store parts:

1. **wrong key**: the simulator answers 401 to the key the build holds. Every request fails;
   the build must exit 1 (not 0, not a crash), say why, publish nothing and mark its manifest
   ``"status": "failed"``.
2. **key fixed**: the same build again. Every request must be sent again (a 401 is not the
   judge's answer) and the build must complete: exit 0, ``duplicate_successes`` 0.
3. **corrupt parts**: between runs, one store part holding answers is cut short (as a full disk
   leaves it) and a zero-byte part is planted beside another judge's. Against a fresh simulator
   (so ``duplicate_successes`` counts only this run), the build must name both files, set them
   aside as ``*.corrupt``, ask again exactly the requests the cut part held, and complete.

Before issue 13's fix the second build sent nothing ("all requests already judged") and exited
0 with an empty dataset, the first exited 0 too, and the third failed with a polars footer
error that named no file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import polars as pl

from benchmarks.reliability import scenario, services
from benchmarks.reliability.attacks import AttackContext, AttackResult, attack
from judgeflow.config import BuildConfig, dump_config
from judgeflow.loading import load_rows
from judgeflow.simulator import Simulator, SimulatorConfig
from judgeflow.specs import expand_requests
from judgeflow.store import JudgmentStore

WRONG_KEY = "sk-wrong-store-recovery-0123456789"



def build_config(root: Path, sim: Simulator, rows: Path, bucket: str | None, endpoint: str | None) -> BuildConfig:
    """Two live judges with few retries (a 401 is not retried anyway) and chunks of 8 requests."""
    live = {"mode": "live", "api_key_env": services.API_KEY_ENV, "timeout_s": 5.0, "max_retries": 1,
            "concurrency": 4}
    output: dict[str, Any] = {"dir": str(root / "out")}
    if bucket and endpoint:
        output |= {"publish_uri": f"s3://{bucket}/datasets", "s3": {"endpoint_url": endpoint, "region": "us-east-1"}}
    return BuildConfig.model_validate({
        "dataset": "store-recovery",
        "input": {"uri": str(rows)},
        "judges": [
            {"name": "recovery-relative", "kind": "relative", "provider": "openai-compatible",
             "model": "prometheus-7b-v2.0", "base_url": sim.openai_base_url, **live},
            {"name": "recovery-absolute", "kind": "absolute", "provider": "anthropic",
             "model": "claude-3-5-haiku-latest", "base_url": sim.anthropic_base_url, **live},
        ],
        "output": output,
        "pairs": {"min_margin": 0},
        "chunk_size": 8,
    })


def expected_requests(config: BuildConfig) -> dict[str, set[str]]:
    """Every request id of every judge for the config's input, computed independently."""
    rows = load_rows(config.input.uri).rows
    return {spec.name: set(expand_requests(rows, spec)["request_id"]) for spec in config.judges}


def _logs(folder: Path) -> str:
    return "".join((folder / name).read_text(errors="replace") for name in ("stdout.txt", "stderr.txt"))


def _manifest_status(out_dir: Path) -> str | None:
    manifests = sorted(out_dir.rglob("manifest.json"))
    if not manifests:
        return None
    return orjson.loads(manifests[-1].read_bytes()).get("status")


def _published(ctx: AttackContext, bucket: str | None) -> int:
    if bucket is None:
        return -1
    return int(ctx.s3.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0))


def damage_store(store: JudgmentStore, config: BuildConfig) -> tuple[list[Path], set[str]]:
    """Cut short one part of the first judge holding answers; plant a zero-byte part beside the
    second judge's. Returns (the damaged paths, the request ids the cut part held)."""
    first, second = config.judges[0], config.judges[1]
    parts = sorted(store.judge_dir(first).glob("*.parquet"))
    holding = [(p, pl.read_parquet(p)) for p in parts]
    holding = [(p, f) for p, f in holding if f.height and (f["status"] == "ok").all()]
    if not holding:
        return [], set()
    path, frame = holding[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    zero = store.judge_dir(second) / "part-planted-empty.parquet"
    zero.parent.mkdir(parents=True, exist_ok=True)
    zero.write_bytes(b"")
    return [path, zero], set(frame["request_id"])


@attack("store_recovery")
def store_recovery(ctx: AttackContext) -> AttackResult:
    """A wrong key then the fixed key, then a cut and a zero-byte store part; see the module doc."""
    rows = ctx.root / "rows.jsonl"
    rows.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in scenario.make_rows(6 if ctx.quick else 12)))
    bucket = ctx.s3.new_bucket("jf-attack-store-recovery") if ctx.s3 is not None else None
    endpoint = ctx.s3.direct_url if bucket else None
    violations: list[str] = []
    numbers: dict[str, int] = {}
    tried = 0

    def run(name: str, sim: Simulator, key: str) -> tuple[int, str, BuildConfig]:
        folder = ctx.root / name
        folder.mkdir(parents=True, exist_ok=True)
        config = build_config(ctx.root, sim, rows, bucket, endpoint)
        dump_config(config, folder / "config.yaml")
        code, seconds = services.run_build(folder / "config.yaml", {**ctx.env, services.API_KEY_ENV: key}, folder / "logs")
        numbers[f"{name}_exit_code"] = code
        ctx.say(f"store_recovery: {name} build exited {code} after {seconds:.1f}s")
        if code == 124:
            violations.append(f"{name}: the build did not end within {services.BUILD_LIMIT_S:.0f} s")
        return code, _logs(folder / "logs"), config

    with Simulator(SimulatorConfig(require_api_key=services.CANARY_API_KEY)) as sim:
        # 1. wrong key: everything fails, the build must say so
        code, logs, config = run("wrong_key", sim, WRONG_KEY)
        expected = expected_requests(config)
        total = sum(len(ids) for ids in expected.values())
        stats = sim.stats()
        numbers["requests"] = total
        numbers["wrong_key_unauthorized"] = int(stats["unauthorized"])
        tried += int(stats["unauthorized"])
        if code != 1:
            violations.append(f"wrong_key: every judgment failed (401) but the build exited {code}, not 1")
        if "Traceback" in logs:
            violations.append("wrong_key: the failed build printed a traceback instead of its reason")
        if "build failed" not in logs or "HTTP 401" not in logs:
            violations.append("wrong_key: the build's output does not give the reason (build failed ... HTTP 401)")
        if stats["unauthorized"] != total:
            violations.append(f"wrong_key: {stats['unauthorized']} requests reached the provider, expected {total}")
        if _manifest_status(ctx.root / "out") != "failed":
            violations.append("wrong_key: the run's manifest does not say \"status\": \"failed\"")
        if _published(ctx, bucket) > 0:
            violations.append("wrong_key: a failed build was published")

        # 2. the key fixed: every request asked again, the build completes
        sim.reset_stats()
        code, logs, config = run("key_fixed", sim, services.CANARY_API_KEY)
        stats = sim.stats()
        numbers["key_fixed_answers"] = int(stats["successful_answers"])
        tried += int(stats["successful_answers"])
        if code != 0:
            violations.append(f"key_fixed: the build exited {code}; its output ends: {logs[-300:]!r}")
        if stats["successful_answers"] != total:
            violations.append(f"key_fixed: {stats['successful_answers']} requests answered, expected all {total} "
                              "(failures of the infrastructure must be asked again)")
        if stats["duplicate_successes"]:
            violations.append(f"key_fixed: {stats['duplicate_successes']} requests paid twice")
        if _manifest_status(ctx.root / "out") != "complete":
            violations.append("key_fixed: the run's manifest does not say \"status\": \"complete\"")
        if bucket is not None and _published(ctx, bucket) <= 0:
            violations.append("key_fixed: the completed build was not published")

    # 3. corrupt parts planted between two runs, asked again against a fresh simulator
    store = JudgmentStore.at(ctx.root / "out" / "store-recovery" / "_store")
    damaged, lost = damage_store(store, config)
    numbers["parts_damaged"] = len(damaged)
    numbers["requests_in_cut_part"] = len(lost)
    if not lost:
        violations.append("corrupt_parts: no store part holding answers to cut (the attack proves nothing)")
        return AttackResult(tried=tried, violations=violations, numbers=numbers, scan_dirs=[ctx.root])
    with Simulator(SimulatorConfig(require_api_key=services.CANARY_API_KEY)) as fresh:
        code, logs, config = run("corrupt_parts", fresh, services.CANARY_API_KEY)
        stats = fresh.stats()
    numbers["corrupt_parts_answers"] = int(stats["successful_answers"])
    tried += len(damaged)
    if code != 0:
        violations.append(f"corrupt_parts: the build exited {code}; its output ends: {logs[-300:]!r}")
    for path in damaged:
        if str(path) not in logs:
            violations.append(f"corrupt_parts: the build's output does not name {path.name}")
        if path.exists() or not path.with_name(path.name + ".corrupt").exists():
            violations.append(f"corrupt_parts: {path.name} was not set aside as {path.name}.corrupt")
    if stats["successful_answers"] != len(lost):
        violations.append(f"corrupt_parts: {stats['successful_answers']} requests sent, expected exactly the "
                          f"{len(lost)} the cut part held")
    if stats["duplicate_successes"]:
        violations.append(f"corrupt_parts: {stats['duplicate_successes']} requests paid twice in one run")
    judged = store.judgments_for(config.judges[0], pl.DataFrame({"request_id": sorted(expected[config.judges[0].name])}))
    if judged.height != len(expected[config.judges[0].name]) or not (judged["status"] == "ok").all():
        violations.append("corrupt_parts: the store does not hold an answer for every request after the run")
    return AttackResult(tried=tried, violations=violations, numbers=numbers, scan_dirs=[ctx.root])
