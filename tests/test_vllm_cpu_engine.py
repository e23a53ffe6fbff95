"""The real vLLM engine (CPU build, tiny model): a whole build, a live judge, prometheus-eval parity.

One build runs end to end with two ``provider: vllm, mode: gpu`` Prometheus judges (absolute and
relative) through ``JUDGEFLOW_VLLM_PYTHON`` (the runner in the engine environment, as on a GPU
worker) and one live judge against a real ``vllm`` OpenAI-compatible server. The same items are
graded by prometheus-eval 0.1.20's own ``VLLM`` + ``PrometheusEval`` with the same seed and
sampling. judgeflow's generated texts and parsed verdicts must equal prometheus-eval's, item for
item: absolute and relative, with and without a reference answer.

Prompts are kept short (a few hundred tokens): the engine's seeded sampling must see each
prompt prefilled in one step (see ``tests/fixtures/vllm_engine.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from infra.local.make_engine_env import ENGINE_OPTIONS, LLM_KWARGS, EngineEnv, engine_environment
from tests.fixtures.vllm_engine import REPO, run_in_engine_env

pytestmark = [pytest.mark.vllm_cpu, pytest.mark.prefect]

SEED = 1234
SAMPLING = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 64, "repetition_penalty": 1.03, "seed": SEED}
SERVED_NAME = "tiny-prometheus"
PROBE = str(REPO / "tests" / "probes" / "prometheus_eval_vllm.py")

ROWS = [
    {"id": "r1", "instruction": "What is the capital of France?",
     "responses": ["Paris is the capital.", "It is Lyon.", "France has no capital city."],
     "reference": "The capital of France is Paris."},
    {"id": "r2", "instruction": "Give two tips for staying healthy.",
     "responses": ["Sleep well and eat vegetables.", "Watch more television."]},
    {"id": "r3", "instruction": "Sort the list 3 1 2 in Python.",
     "responses": ["Use sorted on the list.", "Write a loop that swaps values.", "Python cannot sort."],
     "reference": "sorted([3, 1, 2]) returns [1, 2, 3]."},
    {"id": "r4", "instruction": "Explain why the sky is blue.",
     "responses": ["Blue light is scattered more by the air.", "Because the sea is blue."]},
]


def _judges(model: str, server: str) -> list[dict[str, Any]]:
    gpu = {"provider": "vllm", "mode": "gpu", "model": model, "sampling": SAMPLING, "engine": ENGINE_OPTIONS,
           "max_parse_retries": 1, "rubric": "helpfulness"}
    return [
        {"name": "prom-abs", "kind": "absolute", **gpu},
        {"name": "prom-rel", "kind": "relative", **gpu},
        {"name": "prom-live", "kind": "absolute", "provider": "openai-compatible", "mode": "live",
         "model": SERVED_NAME, "base_url": server, "api_key_env": "JF_VLLM_SERVER_KEY", "sampling": SAMPLING,
         "max_parse_retries": 1, "rubric": "helpfulness", "concurrency": 4, "timeout_s": 300},
    ]


# --- the vLLM OpenAI-compatible server -----------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def vllm_server(vllm_cpu_env: EngineEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m vllm.entrypoints.openai.api_server`` on loopback (the ``vllm`` console script
    does not work in the vllm-cpu distribution); yields its base URL, stopped at teardown."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [
        vllm_cpu_env.python, "-m", "vllm.entrypoints.openai.api_server", "--model", vllm_cpu_env.model,
        "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager",
        "--kv-cache-memory-bytes", str(64 << 20), "--max-num-batched-tokens", "16384",
        "--generation-config", "vllm",  # the request's sampling only, not the checkpoint's defaults
    ]
    env = engine_environment()
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING")  # the server runs its engine core in a child process
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=REPO, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"vLLM server exited {proc.returncode}:\n" + log_path.read_text()[-4000:])
            try:
                with urllib.request.urlopen(f"{base}/v1/models", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("vLLM server not healthy after 300 s:\n" + log_path.read_text()[-4000:])
            time.sleep(2)
        yield f"{base}/v1"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


# --- one build, then prometheus-eval on the same items ---------------------------------------

@pytest.fixture(scope="module")
def engine_build(
    vllm_cpu_env: EngineEnv, vllm_server: str, prefect_harness: Path, tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The whole build on the real engine; its result and every judgment it stored."""
    from flows.build import build_preference_dataset
    from judgeflow.config import BuildConfig

    tmp = tmp_path_factory.mktemp("vllm-build")
    (tmp / "rows.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in ROWS))
    config = BuildConfig.model_validate({
        "dataset": "vllmcpu", "input": {"uri": str(tmp / "rows.jsonl")},
        "judges": _judges(vllm_cpu_env.model, vllm_server),
        "output": {"dir": str(tmp / "out"), "formats": ["parquet"]},
        "max_failed_fraction": 1.0,  # a random toy judge: its unparseable replies are expected
    })
    with pytest.MonkeyPatch.context() as patch:
        for key, value in engine_environment({}).items():
            patch.setenv(key, value)
        patch.setenv("JUDGEFLOW_VLLM_PYTHON", vllm_cpu_env.python)
        patch.delenv("JUDGEFLOW_VLLM_ENGINE_FACTORY", raising=False)
        patch.setenv("JF_VLLM_SERVER_KEY", "not-checked-by-this-server")
        started = time.perf_counter()
        result = build_preference_dataset(config)
        seconds = time.perf_counter() - started
    judgments = pl.read_parquet(Path(result["run_dir"]) / "judgments.parquet")
    return {"result": result, "judgments": judgments, "seconds": seconds}


def _items(judgments: pl.DataFrame, judge: str) -> list[dict[str, Any]]:
    return judgments.filter(pl.col("judge") == judge).sort("request_id").to_dicts()


@pytest.fixture(scope="module")
def reference_run(vllm_cpu_env: EngineEnv, engine_build: dict[str, Any]) -> dict[str, Any]:
    """prometheus-eval's ``VLLM`` + ``PrometheusEval`` on the items the build's GPU judges graded."""
    rows = {r["id"]: r for r in ROWS}
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for judge, mode in (("prom-abs", "absolute"), ("prom-rel", "relative")):
        for item in _items(engine_build["judgments"], judge):
            row = rows[item["row_id"]]
            entry: dict[str, Any] = {"id": item["request_id"], "instruction": row["instruction"],
                                     "reference_answer": row.get("reference")}
            if mode == "absolute":
                entry["response"] = row["responses"][item["candidate_a"]]
            else:
                entry["response_A"] = row["responses"][item["candidate_a"]]
                entry["response_B"] = row["responses"][item["candidate_b"]]
            groups.setdefault((mode, "reference" in row), []).append(entry)
    job = {
        "model": vllm_cpu_env.model, "llm": LLM_KWARGS, "perturb": True,
        "params": {k: v for k, v in SAMPLING.items()},
        "groups": [{"mode": mode, "reference": ref, "rubric": "helpfulness", "items": items}
                   for (mode, ref), items in sorted(groups.items())],
    }
    started = time.perf_counter()
    out = run_in_engine_env(vllm_cpu_env, PROBE, job)
    out["seconds"] = time.perf_counter() - started
    out["groups"] = {(g["mode"], g["reference"]): [i["id"] for i in g["items"]] for g in job["groups"]}
    return out


# --- the build ------------------------------------------------------------------------------

def test_build_runs_end_to_end_on_the_real_engine(engine_build: dict[str, Any]) -> None:
    result, judgments = engine_build["result"], engine_build["judgments"]
    assert result["status"] == "complete" and result["counts"]["rows_judged"] == len(ROWS)
    by_judge = dict(judgments.group_by("judge").len().iter_rows())
    assert by_judge == {"prom-abs": 10, "prom-rel": 16, "prom-live": 10}  # candidates; pairs x 2 orders
    assert judgments["raw_output"].null_count() == 0 and (judgments["raw_output"].str.len_chars() > 0).all()
    assert (judgments["input_tokens"] > 0).all() and (judgments["output_tokens"] > 0).all()
    assert (judgments["output_tokens"] <= 2 * SAMPLING["max_tokens"]).all()  # max_tokens per attempt, 2 at most
    assert judgments.filter(pl.col("status") == "ok").height > 0  # the toy judge answers in format


# --- parity with prometheus-eval ---------------------------------------------------------------

GROUPS = [("absolute", True), ("absolute", False), ("relative", True), ("relative", False)]


@pytest.mark.parametrize(("mode", "reference"), GROUPS, ids=[f"{m}-{'ref' if r else 'noref'}" for m, r in GROUPS])
def test_generated_texts_and_verdicts_equal_prometheus_eval(
    engine_build: dict[str, Any], reference_run: dict[str, Any], mode: str, reference: bool,
) -> None:
    judge = "prom-abs" if mode == "absolute" else "prom-rel"
    ours = {j["request_id"]: j for j in _items(engine_build["judgments"], judge)}
    ids = reference_run["groups"][(mode, reference)]
    assert ids, f"no {mode} items {'with' if reference else 'without'} a reference"
    for request_id in ids:
        theirs, mine = reference_run["items"][request_id], ours[request_id]
        assert mine["raw_output"] == theirs["text"], f"{request_id}: judgeflow and prometheus-eval generated different texts"
        verdict = mine["score"] if mode == "absolute" else mine["verdict"]
        expected = theirs["score"]
        assert (verdict is None) == (expected is None), (request_id, mine["raw_output"], verdict, expected)
        if expected is not None:
            assert (int(verdict) if mode == "absolute" else verdict) == expected, (request_id, mine["raw_output"])
        assert (mine["status"] == "ok") == (expected is not None)


def test_parity_is_not_vacuous(engine_build: dict[str, Any], reference_run: dict[str, Any]) -> None:
    """Verdicts of both kinds were parsed, some replies were not, and the engine's replies depend
    on the prompt: one character more in the rubric changes most of them."""
    items = reference_run["items"]
    scores = [items[i]["score"] for i in reference_run["groups"][("absolute", True)] + reference_run["groups"][("absolute", False)]]
    verdicts = [items[i]["score"] for i in reference_run["groups"][("relative", True)] + reference_run["groups"][("relative", False)]]
    assert len({s for s in scores if s is not None}) >= 2 and {v for v in verdicts if v is not None}
    assert None in scores + verdicts  # unparseable replies are compared too
    first = reference_run["groups"][sorted(reference_run["groups"])[0]]
    original = [items[i]["text"] for i in first]
    changed = sum(a != b for a, b in zip(original, reference_run["perturbed_texts"], strict=True))
    assert changed >= len(original) / 2, "the tiny model's replies do not depend on the prompt"


# --- the live judge against the real server ----------------------------------------------------

def test_live_judge_against_the_vllm_server(engine_build: dict[str, Any]) -> None:
    """Same prompts (the tokenizer's chat template is prometheus-eval's Mistral format), seed and
    sampling through ``/v1/chat/completions``: the server's replies are the offline engine's."""
    live = {(j["row_id"], j["candidate_a"]): j for j in _items(engine_build["judgments"], "prom-live")}
    gpu = {(j["row_id"], j["candidate_a"]): j for j in _items(engine_build["judgments"], "prom-abs")}
    assert set(live) == set(gpu)
    for key, judgment in live.items():
        assert judgment["raw_output"] == gpu[key]["raw_output"], key
        assert judgment["score"] == gpu[key]["score"] and judgment["status"] == gpu[key]["status"]


# --- the CPU benchmark's script runs (figures are for BENCHMARKS.md, never asserted) ------------

def test_vllm_cpu_benchmark_smoke(vllm_cpu_env: EngineEnv, tmp_path: Path) -> None:
    """Both paths grade the same items on one engine with one seed: the same verdicts come out."""
    from benchmarks.vllm_cpu import main

    result = main(["--items", "8", "--repeats", "1", "--kv-cache-mb", "64", "--max-batched-tokens", "16384",
                   "--json", str(tmp_path / "r.json")])
    assert result["items"] == 8 and (tmp_path / "r.json").is_file()
    assert result["judgeflow"]["ok"] == result["prometheus_eval"]["ok"] > 0
    assert result["judgeflow"]["items_per_s"] > 0 and result["prometheus_eval"]["items_per_s"] > 0
