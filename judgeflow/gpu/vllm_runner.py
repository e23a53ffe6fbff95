"""Prometheus 2 on vLLM for one chunk of requests, runnable without Prefect.

Why a separate entry point: vLLM 0.25-0.33 cap fastapi below 0.137 while Prefect 3.8 needs
fastapi >= 0.139, so no environment holds both. The Prefect worker runs in its own environment
and starts this module with the vLLM environment's interpreter (``JUDGEFLOW_VLLM_PYTHON``, see
``tasks/gpu.py``); the core needs no Prefect, so it runs here unchanged::

    python -m judgeflow.gpu.vllm_runner --spec SPEC.json --rows ROWS.parquet \\
        --requests REQ.parquet --out OUT_DIR [--engine-options JSON|@FILE] [--offset N --length M]

It judges the slice with :func:`judgeflow.gpu.prometheus_vllm.judge_prometheus_vllm`, skipping
request ids already in ``OUT_DIR`` (so a re-run resumes), writes the judgments with
``JudgmentSink``, logs to stderr and prints ONE JSON summary line (marked with
``"runner": RUNNER``) last on stdout. Exit status: 0 done, 2 bad arguments or input,
:data:`EXIT_INFRASTRUCTURE` for an infrastructure error worth retrying (OSError, MemoryError,
ConnectionError, as the in-process task retries), 1 anything else.

Only the core's dependencies are imported (polars, pydantic, orjson, jinja2, ...): never
prefect or typer. The engine is ``vllm.LLM`` (:func:`~judgeflow.gpu.prometheus_vllm.load_engine`)
or the stand-in factory named by ``engine_options["factory"]`` / ``JUDGEFLOW_VLLM_ENGINE_FACTORY``.

The caller's side lives here too, as plain subprocess code: :func:`run_out_of_process` starts
the runner under another interpreter, streams its output lines and turns its exit status into
a summary or an exception (:class:`RunnerCrashed` retryable, :class:`RunnerFailed` not).
:func:`run_chunk` is the one code path both the in-process task and the runner take.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from judgeflow.gpu.chunks import chunk_prefix, load_chunk, require_model
from judgeflow.judging.records import JudgmentSink
from judgeflow.specs import JudgeSpec

log = logging.getLogger("judgeflow.gpu.vllm_runner")

RUNNER = "judgeflow.gpu.vllm_runner"
ENGINE_FACTORY_ENV = "JUDGEFLOW_VLLM_ENGINE_FACTORY"
EXAMPLE_MODEL = "prometheus-eval/prometheus-7b-v2.0"
EXIT_INFRASTRUCTURE = 75  # EX_TEMPFAIL: the caller may retry
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (OSError, MemoryError, ConnectionError)

TAIL_LINES = 40
LEVELS = {name: getattr(logging, name) for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")}

EngineSource = Any | Callable[[], Any]
LineSink = Callable[[int, str], None]


class RunnerFailed(RuntimeError):
    """The runner exited non-zero: bad input or a bug. ``tail`` holds its last output lines."""

    def __init__(self, message: str, tail: list[str]) -> None:
        super().__init__(message + ("\n" + "\n".join(tail) if tail else ""))
        self.tail = tail


class RunnerCrashed(ChildProcessError):
    """The runner died of an infrastructure error or a signal (OOM killer): worth a retry.

    A ``ChildProcessError`` is an ``OSError``, which the chunk task's retry condition retries,
    as it does for the same errors raised in process.
    """

    def __init__(self, message: str, tail: list[str]) -> None:
        super().__init__(message + ("\n" + "\n".join(tail) if tail else ""))
        self.tail = tail


def import_factory(path: str) -> Callable[..., Any]:
    """``"module:callable"`` -> the callable (an engine factory ``factory(model, EngineSettings)``)."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"engine factory must be 'module:callable', got {path!r}")
    return getattr(importlib.import_module(module), name)


def engine_recipe(options: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """(factory path or None for ``vllm.LLM``, the remaining ``EngineSettings`` fields)."""
    opts = dict(options or {})
    factory_path = opts.pop("factory", None) or os.environ.get(ENGINE_FACTORY_ENV) or None
    return factory_path, opts


def merged_engine_options(spec: JudgeSpec, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The spec's ``engine`` settings with ``overrides`` (the flow's ``engine`` parameter) on top.

    Why both: a build config says how its judge's engine starts (dtype, max_model_len, KV-cache
    size ...) in the spec, which travels with every dispatch (in process, deployment, runner);
    an operator can still override a field per flow run. ``extra`` merges key by key;
    ``factory`` passes through. Applying it twice gives the same options.
    """
    opts = spec.engine.model_dump(mode="json")
    over = dict(overrides or {})
    extra = {**opts.pop("extra"), **(over.pop("extra", None) or {})}
    opts.update(over)
    opts["extra"] = extra
    return opts


def build_engine(model: str, options: dict[str, Any] | None) -> Any:
    """Start the engine for ``model``: ``vllm.LLM`` or the configured factory's stand-in."""
    from judgeflow.gpu.prometheus_vllm import EngineSettings, load_engine

    factory_path, opts = engine_recipe(options)
    factory = import_factory(factory_path) if factory_path else load_engine
    try:
        settings = EngineSettings.model_validate(opts)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'engine'}: {e['msg']}" for e in exc.errors())
        known = ", ".join(EngineSettings.model_fields)
        raise ValueError(f"engine options for {model!r}: {problems} (set them in the judge's 'engine' "
                         f"or the flow's engine parameter; fields: {known})") from None
    return factory(model, settings)


def run_chunk(
    spec: JudgeSpec,
    rows_path: str,
    requests_path: str,
    out_dir: str,
    *,
    offset: int = 0,
    length: int | None = None,
    engine_options: dict[str, Any] | None = None,
    engine: EngineSource | None = None,
) -> dict[str, Any]:
    """Judge one slice of ``requests_path`` into ``out_dir``; the summary the flow adds up.

    ``engine``: an engine, a zero-argument callable returning one (called only when something
    is pending, so a finished chunk never starts vLLM), or None to build one from the spec's
    ``engine`` settings with ``engine_options`` on top (:func:`merged_engine_options`). The same
    function runs in the Prefect task (cached engine) and in this module's subprocess (fresh
    engine), so both skip, judge and name parts alike.
    """
    from judgeflow.gpu.prometheus_vllm import judge_prometheus_vllm

    rows, pending, skipped = load_chunk(rows_path, requests_path, offset, length, out_dir)
    summary: dict[str, Any] = {"judge": spec.name, "requests": 0, "ok": 0, "failed": 0}
    if pending.height:
        model = require_model(spec, EXAMPLE_MODEL)
        if engine is None:
            llm = build_engine(model, merged_engine_options(spec, engine_options))
        elif callable(engine) and not hasattr(engine, "generate"):
            llm = engine()
        else:
            llm = engine
        with JudgmentSink(out_dir, prefix=chunk_prefix("vllm", spec, requests_path, offset)) as sink:
            summary = judge_prometheus_vllm(spec, rows, pending, sink, engine=llm)
    summary["skipped"] = skipped
    return summary


def _level(line: str) -> int:
    """The level a log line names first ("INFO ...", "WARNING 11-23 ..."), else INFO."""
    word = line.split(" ", 1)[0].rstrip(":")
    return LEVELS.get(word, logging.INFO)


def run_out_of_process(
    python: str,
    spec: JudgeSpec,
    rows_path: str,
    requests_path: str,
    out_dir: str,
    *,
    offset: int = 0,
    length: int | None = None,
    engine_options: dict[str, Any] | None = None,
    on_line: LineSink | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run this module under ``python`` (the vLLM environment's) for one chunk; its summary.

    The spec and engine options travel in files of a private temporary directory, so the
    command line holds only paths; credentials such as ``HF_TOKEN`` reach the runner through
    the inherited environment, never argv. Each output line (the runner's stderr merged into
    stdout, so nothing blocks) goes to ``on_line(level, line)`` as it comes. The runner gets its
    own process group, killed on the way out, so a cancelled task leaves no vLLM workers behind.
    Raises :class:`RunnerCrashed` (retryable) or :class:`RunnerFailed` with the output tail.
    """
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    summary: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="judgeflow-vllm-") as tmp:
        spec_file, options_file = Path(tmp) / "spec.json", Path(tmp) / "engine.json"
        spec_file.write_bytes(orjson.dumps(spec.model_dump(mode="json")))
        options_file.write_bytes(orjson.dumps(engine_options or {}))
        os.chmod(options_file, 0o600)
        command = [python, "-m", RUNNER, "--spec", str(spec_file), "--rows", rows_path,
                   "--requests", requests_path, "--out", out_dir,
                   "--engine-options", f"@{options_file}", "--offset", str(offset)]
        if length is not None:
            command += ["--length", str(length)]
        child_env = runner_environment(python, os.environ if env is None else env)
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env, text=True, errors="replace", bufsize=1, start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                if line.startswith('{"runner":'):
                    candidate = orjson.loads(line)
                    if candidate.get("runner") == RUNNER:
                        summary = candidate
                        continue
                tail.append(line)
                if on_line is not None and line.strip():
                    on_line(_level(line), line)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted (cancelled task, timeout): stop the whole group
                _stop_group(proc)
    if code == 0 and summary is not None:
        summary.pop("runner", None)
        return summary
    lines = list(tail)
    if code < 0 or code == EXIT_INFRASTRUCTURE:
        how = f"killed by signal {-code}" if code < 0 else f"exit {code} (infrastructure error)"
        raise RunnerCrashed(f"vLLM runner ({python}) {how}; last output:", lines)
    if code == 0:
        raise RunnerFailed(f"vLLM runner ({python}) exited 0 without a summary line; last output:", lines)
    raise RunnerFailed(f"vLLM runner ({python}) exited {code}; last output:", lines)


def runner_environment(python: str, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` as the runner should see it: the vLLM environment's ``bin`` first on PATH.

    The worker's PATH leads to the Prefect environment; vLLM's JIT steps (flashinfer's ninja,
    triton) look for tools on PATH, so the runner's own environment must come first. Unbuffered
    output so log lines reach the task as they happen.
    """
    env = {**base, "PYTHONUNBUFFERED": "1"}
    if os.sep in python:  # a path, not a bare name: never resolve the venv's python symlink
        bin_dir = Path(python).absolute().parent
        env["PATH"] = os.pathsep.join(p for p in (str(bin_dir), base.get("PATH", "")) if p)
        if (bin_dir.parent / "pyvenv.cfg").exists():
            env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return env


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the runner's process group, SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _json_arg(value: str | None) -> dict[str, Any]:
    """A JSON object given inline or as ``@path`` (the task uses a file: nothing on argv)."""
    if not value:
        return {}
    data = orjson.loads(Path(value[1:]).read_bytes() if value.startswith("@") else value)
    if not isinstance(data, dict):
        raise ValueError("engine options must be a JSON object")
    return data


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m judgeflow.gpu.vllm_runner",
        description="Judge one chunk of requests with Prometheus 2 on vLLM (no Prefect needed).",
    )
    parser.add_argument("--spec", required=True, help="JudgeSpec as a JSON file")
    parser.add_argument("--rows", required=True, help="rows (Parquet or JSON Lines)")
    parser.add_argument("--requests", required=True, help="requests (Parquet or JSON Lines)")
    parser.add_argument("--out", required=True, help="judgments directory (part files)")
    parser.add_argument("--engine-options", default=None,
                        help="EngineSettings fields (+ 'factory') as JSON, or @FILE; on top of the spec's engine")
    parser.add_argument("--offset", type=int, default=0, help="first request of the slice")
    parser.add_argument("--length", type=int, default=None, help="requests in the slice (default: all)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one chunk; print the summary line; return the exit status (see the module doc)."""
    logging.basicConfig(
        stream=sys.stderr, level=os.environ.get("JUDGEFLOW_LOG_LEVEL", "INFO"),
        format="%(levelname)s %(name)s: %(message)s",
    )
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        spec = JudgeSpec.model_validate_json(Path(args.spec).read_bytes())
        options = _json_arg(args.engine_options)
    except (ValueError, OSError) as exc:
        log.error("bad input: %s", exc)
        return 2
    try:
        summary = run_chunk(spec, args.rows, args.requests, args.out, offset=args.offset,
                            length=args.length, engine_options=options)
    except INFRASTRUCTURE_ERRORS as exc:
        log.exception("infrastructure error (retryable): %s", exc)
        return EXIT_INFRASTRUCTURE
    except Exception as exc:  # noqa: BLE001 - reported on stderr, the caller fails the task
        log.exception("chunk failed: %s", exc)
        return 1
    summary = {"runner": RUNNER, **summary, "wall_seconds": round(time.perf_counter() - started, 3)}
    log.info("%s: %d graded (%d failed), %d already done; %.1f s in all, %.1f s judging",
             spec.name, summary["requests"], summary["failed"], summary["skipped"],
             summary["wall_seconds"], summary.get("seconds", 0.0))
    sys.stdout.flush()
    sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
