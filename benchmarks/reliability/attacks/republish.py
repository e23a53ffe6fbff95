"""Republish a run killed mid-upload: a reader of S3 must see one complete version, never a mix.

A run published under ``{dataset}/{date}/{run_id}/`` is published again with the same run id
and changed content (a rebuild after a fix), in a subprocess that is SIGKILLed after ``k``
uploads, for several ``k`` (0 = before any upload; past the last data file = around the
manifest write). After every kill a fresh client reads the bucket as a consumer would: the
``manifest.json`` there must be byte-identical to the version before the attempt or to the
attempt's own, and every object it lists must hold the listed sha256 and size
(``invariants.read_published``). Finally a clean republish must complete, and publishing
identical content again must upload no data object (a rebuilt manifest with new times only
replaces the manifest).

Uploads go through the suite's S3 proxy, so its faults (503s, resets, a reply lost after the
write) hit the republishes too. The kills are real: the child is
``python -m benchmarks.reliability.attacks.republish`` in its own session, printing one line per
verified upload; the parent SIGKILLs the process group as soon as it has read ``k`` lines, so the
kill lands wherever the child got to in the meantime (often inside the next upload).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from benchmarks.reliability.attacks import AttackContext, AttackResult, attack
from benchmarks.reliability.invariants import read_published

DATASET, RUN_ID, DAY = "attack", "republish-1", "2026-01-01"
CHILD_LIMIT_S = 120.0  # one small publish takes about a second; this bounds a hang


def write_version(root: Path, index: int) -> Path:
    """A sealed run folder whose every file depends on ``index`` (and a file set that varies)."""
    from judgeflow.storage.manifest import write_manifest
    from judgeflow.storage.writer import run_dir

    folder = run_dir(root / f"version-{index:02d}", DATASET, RUN_ID, DAY)
    n = 40 + index
    rows = pl.DataFrame({"row_id": [f"r{i:03d}" for i in range(n)],
                         "instruction": [f"question {i} of version {index}" for i in range(n)]})
    rows.write_parquet(folder / "rows.parquet")
    rows.with_columns(pl.lit(index).alias("version")).write_parquet(folder / "pairs.parquet")
    (folder / "pairs.jsonl").write_bytes(rows.write_ndjson().encode())
    (folder / "report.html").write_text(f"<html><body>version {index}</body></html>\n" * 50)
    (folder / "parts").mkdir(exist_ok=True)
    for part in range(2 + index % 3):  # files appear and disappear between versions
        (folder / "parts" / f"part-{part:05d}.jsonl").write_bytes(
            b"".join(orjson.dumps({"v": index, "part": part, "i": i}) + b"\n" for i in range(200)))
    write_manifest(folder, dataset=DATASET, run_id=RUN_ID, date=DAY, started_at=datetime.now(UTC),
                   counts={"rows": n})
    return folder


def _publish_in_child(folder: Path, destination: str, endpoint: str, env: dict[str, str],
                      kill_after: int | None, log: Path) -> tuple[bool, int, list[str]]:
    """Publish ``folder`` in a subprocess; SIGKILL its process group once it reported
    ``kill_after`` uploads (0: as soon as it is ready to publish). A watchdog kills it after
    ``CHILD_LIMIT_S`` whatever happens. Returns (killed by us, return code, keys reported)."""
    command = [sys.executable, "-m", "benchmarks.reliability.attacks.republish",
               str(folder), destination, endpoint]
    with log.open("wb") as errors:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors,
                                start_new_session=True)
    watchdog = threading.Timer(CHILD_LIMIT_S, _kill_group, args=(proc,))
    watchdog.start()
    uploaded: list[str] = []
    killed = False
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode().strip()
            if line.startswith("uploaded "):
                uploaded.append(line.split(" ", 1)[1])
            if kill_after is not None and line != "done" and len(uploaded) >= kill_after:
                _kill_group(proc)
                killed = True
                break
    finally:
        watchdog.cancel()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return killed, proc.returncode, uploaded


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _reader_check(client: Any, bucket: str, manifest_key: str, allowed: dict[str, bytes],
                  label: str) -> tuple[str | None, list[str]]:
    """Which allowed version a fresh reader sees (by name), and what is wrong with it."""
    try:
        body = client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None, [f"{label}: no manifest at s3://{bucket}/{manifest_key}"]
    seen = next((name for name, manifest in allowed.items() if manifest == body), None)
    problems = [] if seen else [f"{label}: the manifest in S3 is neither {' nor '.join(allowed)}"]
    _, bad = read_published(client, bucket, manifest_key)
    problems += [f"{label}: {problem}" for problem in bad]
    return seen, problems


@attack("republish")
def republish(ctx: AttackContext) -> AttackResult:
    """Publish, then republish changed versions killed after k uploads; check after each kill."""
    from judgeflow.storage.s3 import MANIFEST_NAME, S3Config, publish_run

    bucket = ctx.s3.new_bucket(f"jf-attack-republish-{uuid.uuid4().hex[:8]}")
    destination = f"s3://{bucket}/datasets"
    manifest_key = f"datasets/{DATASET}/{DAY}/{RUN_ID}/{MANIFEST_NAME}"
    # publishes go through the suite's fault-injecting proxy (503s, resets, replies lost after the
    # write); every check reads moto directly with a fresh client
    endpoint = ctx.s3.proxy.url
    config = S3Config(endpoint_url=endpoint, region="us-east-1", addressing_style="path", max_attempts=10)
    env = dict(ctx.env)
    env.setdefault("AWS_ACCESS_KEY_ID", "attack")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "attack")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    repo = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))

    violations: list[str] = []
    numbers = {"kills": 0, "old_seen": 0, "new_seen": 0, "checks": 0}
    first = write_version(ctx.root, 0)
    publish_run(first, destination, config)
    current = (first / MANIFEST_NAME).read_bytes()
    # k: uploads before the kill; "data" = every data file (the kill lands around the manifest
    # write), "all" = the manifest too (the republish completed)
    plan: list[int | str] = [0, 1, 3, "data", "all"] if ctx.quick else [0, 1, 2, 3, 4, 5, "data", "all"]
    ctx.say(f"attack republish: {len(plan)} republishes of changed content killed after k uploads, k={plan}")

    last = first
    for index, step in enumerate(plan, start=1):
        version = write_version(ctx.root, index)
        new = (version / MANIFEST_NAME).read_bytes()
        n_files = len(orjson.loads(new)["files"])
        k = step if isinstance(step, int) else n_files + (step == "all")
        killed, rc, uploaded = _publish_in_child(version, destination, endpoint, env, k,
                                                 ctx.root / f"child-{index:02d}.log")
        numbers["kills"] += killed
        if not killed and rc != 0:
            violations.append(f"republish {index} (k={k}) failed on its own (rc {rc}), see "
                              f"{ctx.root / f'child-{index:02d}.log'}")
        seen, problems = _reader_check(ctx.s3.client(), bucket, manifest_key,
                                       {"old": current, "new": new}, f"after kill at k={k}")
        numbers["checks"] += 1
        violations += problems
        if seen == "new":
            numbers["new_seen"] += 1
            current = new
        elif seen == "old":
            numbers["old_seen"] += 1
        last = version

    # a clean republish of the last (interrupted) version completes and is what a reader sees
    done = publish_run(last, destination, config)
    final = (last / MANIFEST_NAME).read_bytes()
    seen, problems = _reader_check(ctx.s3.client(), bucket, manifest_key, {"new": final}, "after retry")
    violations += problems
    # identical content: nothing uploaded at all; a rebuilt manifest (new times) alone re-sent
    again = publish_run(last, destination, config)
    if again.uploaded:
        violations.append(f"republishing identical content uploaded {again.uploaded}")
    from judgeflow.storage.manifest import write_manifest

    write_manifest(last, dataset=DATASET, run_id=RUN_ID, date=DAY, started_at=datetime.now(UTC),
                   counts={"rows": -1})
    rebuilt = publish_run(last, destination, config)
    data_uploads = [key for key in rebuilt.uploaded if not key.endswith(MANIFEST_NAME)]
    if data_uploads:
        violations.append(f"a rebuild with identical files re-uploaded {data_uploads}")
    seen, problems = _reader_check(ctx.s3.client(), bucket, manifest_key,
                                   {"rebuilt": (last / MANIFEST_NAME).read_bytes()}, "after rebuild")
    violations += problems
    numbers.update(checks=numbers["checks"] + 3, resumed_skipped=len(done.skipped),
                   identical_uploads=len(again.uploaded), rebuild_data_uploads=len(data_uploads))
    return AttackResult(tried=len(plan) + 3, violations=violations, numbers=numbers, buckets=[bucket],
                        scan_dirs=[ctx.root])


def _child(argv: list[str]) -> int:
    """``RUN_DIR DESTINATION ENDPOINT``: publish, printing ``uploaded KEY`` after each upload."""
    from judgeflow.storage.s3 import S3Config, publish_run

    folder, destination, endpoint = argv
    config = S3Config(endpoint_url=endpoint, region="us-east-1", addressing_style="path", max_attempts=10)
    print("ready", flush=True)
    publish_run(Path(folder), destination, config,
                on_uploaded=lambda key: print(f"uploaded {key}", flush=True))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1:]))
