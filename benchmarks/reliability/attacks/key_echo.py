"""Key echo: a provider (or a gateway in front of it) quotes the API key in its error messages.

Some gateways answer a wrong key with a 401 that quotes it whole, and put it in 5xx and batch
error messages too. The simulator's ``echo_api_key`` mode does exactly that on every endpoint.
Two real builds (``judgeflow run CONFIG.yaml`` subprocesses reporting to the suite's Prefect
API) hold the canary key (``services.CANARY_API_KEY``) and use every provider path at once:
OpenAI live over the lean client and over the SDK, Anthropic live over both, the OpenAI Batch
API, the Anthropic Message Batches API and candidate generation.

* ``rejected``: the simulator refuses the key with an echoing 401 on every endpoint (live calls,
  batch listing, upload, create): the build fails, and its failure must not carry the key;
* ``faults``: the key is accepted, but live calls meet echoing 5xx and 200-with-error replies,
  batch creation and status calls echoing 429s, batches failing validation with an echoing
  message, and echoing per-request errors in the batch result files (the download path).

The simulator's per-endpoint counters prove each path was reached (a path that was not is a
violation: the attack would prove nothing there). The builds' stdout/stderr go to files under
the attack's folder; that folder (outputs, judgment store in zstd Parquet, ledger) is searched
here, with the Prefect server's logs, artifacts and flow- and task-run states, and returned in
``scan_dirs`` / ``buckets`` so the suite's own scan (database file included) covers it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from benchmarks.reliability import scenario, secrets_scan, services
from benchmarks.reliability.attacks import AttackContext, AttackResult, attack
from judgeflow.config import BuildConfig, dump_config
from judgeflow.simulator import Simulator, SimulatorConfig

FAST_BATCHES = {"batch_validating_s": 0.05, "batch_in_progress_s": 0.3, "batch_finalizing_s": 0.05,
                "batch_cancel_s": 0.05, "retry_after_s": 0.0}

#: Per-endpoint echo counters each build must show: (what, any of these endpoint keys).
REJECTED_PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("OpenAI live (lean and SDK) and generation", ("POST /v1/chat/completions",)),
    ("Anthropic live (lean and SDK)", ("POST /v1/messages",)),
    ("OpenAI Batch API", ("GET /v1/batches", "POST /v1/files", "POST /v1/batches")),
    ("Anthropic Message Batches", ("POST /v1/messages/batches", "GET /v1/messages/batches")),
)
FAULT_PATHS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("OpenAI live 5xx", ("POST /v1/chat/completions",)),  # 0.3 of ~24 calls
    ("Anthropic live 5xx", ("POST /v1/messages",)),
    ("OpenAI batch status", ("GET /v1/batches/{batch_id}",)),  # the first batch fails validation
    ("OpenAI batch download", ("GET /v1/files/{file_id}/content",)),  # the second one expires
    ("Anthropic batch status", ("GET /v1/messages/batches/{batch_id}",)),  # 0.5 of >= 9 calls
    ("Anthropic batch download", ("GET /v1/messages/batches/{batch_id}/results",)),  # 0.3 of ~24
)
#: Reached by chance (a 429 on a few create calls): counted, not required.
CHANCE_PATHS = (("batch create 429", ("POST /v1/batches", "POST /v1/messages/batches")),)
SCENARIOS: dict[str, dict[str, Any]] = {
    "rejected": {"require_api_key": "a-different-key-than-the-canary"},
    "faults": {"rate_500": 0.3, "rate_200_error": 0.1, "batch_create_429_rate": 0.3,
               "status_429_rate": 0.5, "batch_request_error_rate": 0.3,
               "fail_validation_first_n_batches": 1, "expire_first_n_batches": 2},
}
REQUIRED = {"rejected": REJECTED_PATHS, "faults": FAULT_PATHS}


def build_config(root: Path, sim: Simulator, rows: Path, bucket: str | None, endpoint: str | None) -> BuildConfig:
    """Every provider path in one build: four live judges (two providers x two transports), two
    Batch-API judges and a generator, all holding the key named by ``services.API_KEY_ENV``."""
    key = {"api_key_env": services.API_KEY_ENV}
    live = {"mode": "live", "timeout_s": 3.0, "max_retries": 1, "concurrency": 4, **key}
    batch = {"mode": "batch", **key, "batch": {"poll_initial_s": 0.1, "poll_max_s": 0.5, "deadline_s": 60,
                                              "max_requests_per_batch": 8, "max_rounds": 2}}
    oai, ant = {"base_url": sim.openai_base_url}, {"base_url": sim.anthropic_base_url}
    gpt, claude = {"model": "gpt-4o-mini"}, {"model": "claude-3-5-haiku-latest"}
    output: dict[str, Any] = {"dir": str(root / "out"), "formats": ["parquet", "jsonl"]}
    if bucket and endpoint:
        output |= {"publish_uri": f"s3://{bucket}/datasets", "s3": {"endpoint_url": endpoint, "region": "us-east-1"}}
    return BuildConfig.model_validate({
        "dataset": "key-echo",
        "input": {"uri": str(rows)},
        "judges": [
            {"name": "echo-openai-live-lean", "kind": "absolute", "provider": "openai", "transport": "fast", **oai, **gpt, **live},
            {"name": "echo-openai-live-sdk", "kind": "absolute", "provider": "openai", "transport": "sdk", **oai, **gpt, **live},
            {"name": "echo-anthropic-live-lean", "kind": "absolute", "provider": "anthropic", "transport": "fast", **ant, **claude, **live},
            {"name": "echo-anthropic-live-sdk", "kind": "absolute", "provider": "anthropic", "transport": "sdk", **ant, **claude, **live},
            {"name": "echo-openai-batch", "kind": "absolute", "provider": "openai", **oai, **gpt, **batch},
            {"name": "echo-anthropic-batch", "kind": "pairwise", "template": "pairwise-json", "provider": "anthropic",
             **ant, **claude, **batch},
        ],
        "generation": {"enabled": True, "n_candidates": 3, "generators": [
            {"name": "echo-generator", "provider": "openai-compatible", "model": "gen-model", **oai, **key,
             "concurrency": 4},
        ]},
        "output": output,
        "chunk_size": 20,
        # the faults fail some requests on purpose; the build must still publish (the S3 path)
        "max_failed_fraction": 1.0,
    })



def missing_paths(stats: dict[str, Any], required: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    """The provider paths of ``required`` on which the simulator echoed no key."""
    return [what for what, endpoints in required
            if not any(int(stats.get(f"keys_echoed {e}", 0)) for e in endpoints)]


@attack("key_echo")
def key_echo(ctx: AttackContext) -> AttackResult:
    """Two builds against an echoing simulator; no canary may appear anywhere they leave traces."""
    rows = ctx.root / "rows.jsonl"
    rows.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in scenario.make_rows(4 if ctx.quick else 8)))
    env = {**ctx.env, services.API_KEY_ENV: services.CANARY_API_KEY}
    canaries = (services.CANARY_API_KEY,)
    violations: list[str] = []
    numbers: dict[str, int] = {}
    buckets: list[str] = []
    tried = 0
    for name, faults in SCENARIOS.items():
        folder = ctx.root / name
        folder.mkdir(parents=True, exist_ok=True)
        bucket = None
        if ctx.s3 is not None and name == "faults":
            bucket = ctx.s3.new_bucket(f"jf-attack-key-echo-{name}")
            buckets.append(bucket)
        config = SimulatorConfig.model_validate({"echo_api_key": True, **FAST_BATCHES, **faults})
        with Simulator(config) as sim:
            cfg = build_config(folder, sim, rows, bucket, ctx.s3.direct_url if bucket else None)
            dump_config(cfg, folder / "config.yaml")
            code, seconds = services.run_build(folder / "config.yaml", env, folder / "logs")
            stats = sim.stats()
        echoed = int(stats.get("keys_echoed", 0))
        numbers[f"{name}_keys_echoed"] = echoed
        numbers[f"{name}_exit_code"] = code
        ctx.say(f"key_echo: {name} build exited {code} after {seconds:.1f}s; the simulator echoed the key "
                f"in {echoed} replies")
        if code == 124:
            violations.append(f"{name}: the build did not end within {services.BUILD_LIMIT_S:.0f} s")
        for what in missing_paths(stats, REQUIRED[name]):
            violations.append(f"{name}: no echoed key reached the {what} path (the attack proves nothing there)")
        paths = REQUIRED[name] + (CHANCE_PATHS if name == "faults" else ())
        unreached = missing_paths(stats, paths)
        numbers |= {f"{name}: {what}": int(what not in unreached) for what, _ in paths}
        tried += echoed
    n_files, found = secrets_scan.scan_files([ctx.root], canaries)
    numbers["files_scanned"] = n_files
    for bucket in buckets:
        n, hits = secrets_scan.scan_bucket(ctx.s3.client(), bucket, canaries)
        numbers["s3_objects_scanned"] = numbers.get("s3_objects_scanned", 0) + n
        found += hits
    api_url = ctx.env.get("PREFECT_API_URL")
    if api_url:
        counts, hits = secrets_scan.scan_prefect(api_url, canaries)
        numbers.update(counts)
        found += hits
    violations += [f"key leaked: {f}" for f in found]
    return AttackResult(tried=tried, violations=violations, numbers=numbers,
                        scan_dirs=[ctx.root], buckets=buckets)
