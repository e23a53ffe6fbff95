"""Shared helpers of the benchmark scripts: medians, peak RSS, machine facts, markdown tables.

Why here: every benchmark reports the same way (medians of repeats, peak RSS of the process that
did the work, a PASS/MISS verdict against a target), and ``python -m benchmarks`` folds them all
into one BENCHMARKS.md, so the formatting must not drift between scripts.

Only the standard library and polars: the benchmarks must run in the project's own venv without
extra packages (no psutil: peak RSS comes from ``resource.getrusage``).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Packages whose versions the report names (the ones that decide the figures).
REPORTED_PACKAGES = (
    "judgeflow", "prefect", "polars", "pydantic", "openai", "anthropic", "aiohttp", "orjson", "boto3",
)


def median(values: Iterable[float]) -> float:
    """Median of ``values`` (a single value is its own median)."""
    return float(statistics.median(list(values)))


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size in MiB of this process (or of its waited-for children).

    Linux reports ``ru_maxrss`` in KiB. For children it is the largest of any single child,
    not a sum: each benchmark phase runs in a child of its own so the figure is that phase's.
    """
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: cores, CPU model, memory, Python, package versions."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_1m": round(load[0], 2),
        "packages": {name: _version(name) for name in REPORTED_PACKAGES},
    }


def verdict(ok: bool | None) -> str:
    """PASS / MISS for a target, ``n/a`` when the figure could not be measured."""
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"


def fmt(value: Any, digits: int = 1) -> str:
    """Numbers with thousands separators; None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; cells are formatted with ``fmt`` unless already strings."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = [c if isinstance(c, str) else fmt(c) for c in row]
        if len(cells) != len(headers):
            raise ValueError(f"row has {len(cells)} cells, table has {len(headers)} columns")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def run_json_child(
    args: Sequence[str], *, timeout: float | None = None, env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Run ``args`` as a child process and return the JSON object on its last stdout line.

    A child per measurement keeps each figure's CPU time and peak RSS its own. Failures raise
    with the tail of the child's stderr, so the report can quote it.
    """
    proc = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT,
        env=dict(env) if env is not None else None, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip().startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(args[:4])} ... printed no JSON:\n{proc.stdout[-1000:]}{proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def bench_rows(n: int) -> Any:
    """``n`` valid rows in ``ROWS_SCHEMA``, one response each, built with polars expressions.

    The same texts as ``benchmarks/live_judging.py`` and the peer drivers use, so every benchmark
    judges comparable Prometheus absolute items.
    """
    import polars as pl

    from judgeflow.schemas import ROWS_SCHEMA

    idx = pl.int_range(n, dtype=pl.Int64, eager=True)
    frame = pl.DataFrame({"i": idx}).select(
        ("r" + pl.col("i").cast(pl.String)).alias("row_id"),
        ("Write one sentence about topic " + pl.col("i").cast(pl.String) + ".").alias("instruction"),
        pl.concat_list(
            "Topic " + pl.col("i").cast(pl.String) + " is interesting because of reason "
            + (pl.col("i") % 97).cast(pl.String) + "."
        ).alias("responses"),
        pl.lit(None, dtype=pl.List(pl.String)).alias("models"),
        pl.lit(None, dtype=pl.String).alias("reference"),
        pl.lit("{}").alias("metadata"),
        pl.col("i").alias("source_index"),
        ("h" + pl.col("i").cast(pl.String)).alias("content_hash"),
    )
    return frame.cast(ROWS_SCHEMA)  # type: ignore[arg-type]


def python_module(module: str, *args: str) -> list[str]:
    """``[sys.executable, -m, module, *args]``: a child in the same venv."""
    return [sys.executable, "-m", module, *args]


def profile_top(fn: Callable[[], Any], n: int = 15) -> str:
    """Run ``fn`` under cProfile; the top ``n`` entries by cumulative time, as text.

    Used where a target is missed: the report quotes it so the owner sees where the time goes.
    """
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(n)
    text = buf.getvalue()
    start = text.find("   ncalls")
    return text[start:].rstrip() if start >= 0 else text.rstrip()


def write_json(path: str | Path | None, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` (no-op for None)."""
    if path is None:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, default=str))


__all__ = [
    "ROOT", "bench_rows", "cpu_seconds", "fmt", "machine_info", "md_table", "median", "peak_rss_mb", "profile_top",
    "python_module", "run_json_child", "verdict", "write_json",
]
