"""Optional stage: generate candidate responses for rows that have too few."""

from __future__ import annotations

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from judgeflow.config import BuildConfig
from judgeflow.generation import generate_candidates as fill_candidates
from judgeflow.pipeline import RunPaths


@task(name="generate-chunk", cache_policy=NONE, retries=2, retry_delay_seconds=[10, 60])
def generate_chunk(config: BuildConfig, rows_path: str, out_path: str, store_dir: str) -> dict[str, int]:
    """Fill one chunk of rows; cached generations are reused, so a retry never pays twice."""
    rows = pl.read_parquet(rows_path)
    filled, log = fill_candidates(rows, config.generation, store_dir)
    filled.write_parquet(out_path)
    return {
        "rows": rows.height,
        "generated": int(log["text"].is_not_null().sum()),
        "failed": int(log["text"].is_null().sum()),
    }


@flow(name="generate-candidates")
def generate_candidates(config: BuildConfig, rows_path: str, paths: RunPaths) -> str:
    """Fill every row up to ``generation.n_candidates``; returns the path of the filled rows."""
    logger = get_run_logger()
    rows = pl.read_parquet(rows_path)
    folder = paths.work_dir / "generation"
    folder.mkdir(parents=True, exist_ok=True)
    chunk_rows = max(1, config.chunk_size // max(config.generation.n_candidates, 1))
    outputs, futures = [], []
    for index, offset in enumerate(range(0, rows.height, chunk_rows)):
        part_in, part_out = folder / f"in-{index:05d}.parquet", folder / f"out-{index:05d}.parquet"
        rows.slice(offset, chunk_rows).write_parquet(part_in)
        outputs.append(part_out)
        futures.append(generate_chunk.submit(config, str(part_in), str(part_out), str(paths.store_dir)))
    stats = [f.result() for f in futures]
    filled_path = paths.run_dir / "rows.parquet"
    pl.concat([pl.read_parquet(p) for p in outputs]).write_parquet(filled_path)
    totals = {k: sum(s[k] for s in stats) for k in ("rows", "generated", "failed")}
    logger.info("generation: %(generated)d candidates generated, %(failed)d failed over %(rows)d rows", totals)
    create_table_artifact(key="generation", table=[totals], description="Candidate generation")
    return str(filled_path)
