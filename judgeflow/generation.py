"""Candidate generation: fill rows up to ``n_candidates`` responses before judging.

As llama-stack's ``evaluate_batch`` and OpenPO's completion step do, rows that carry fewer
candidates than wanted get new ones from the configured generator models, through the same
clients the live judges use (rate limits, retries, timeouts). Which model wrote which response
is recorded in the row's ``models`` list.

Generations are cached like judgments: by (row content hash before generation, slot,
generator spec), in the store, so a nightly re-run neither pays again nor changes the
candidates it already judged. A generation that fails after retries leaves the row with fewer
candidates and is reported; it is never invented.

The store is written by the generation tasks of a build at the same time: each writes its own
part under a name no other task can pick (time and a random suffix, written to a temporary
name and renamed), and an unreadable part is set aside as ``*.corrupt`` and its candidates are
generated again (``judgeflow.store.set_aside_corrupt``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from judgeflow.clients import make_client
from judgeflow.clients.base import redact
from judgeflow.config import GenerationConfig, GeneratorSpec
from judgeflow.loading import content_hashes
from judgeflow.specs import JudgeSpec
from judgeflow.store import set_aside_corrupt

#: Sent as the system prompt of every generation request (the simulator recognises it too).
GENERATION_SYSTEM_PROMPT = "You are a helpful assistant. Answer the user's request."

GENERATIONS_SCHEMA: dict[str, pl.DataType] = {
    "generation_id": pl.String(),
    "content_hash": pl.String(),
    "slot": pl.Int32(),
    "generator": pl.String(),
    "model": pl.String(),
    "text": pl.String(),
    "error": pl.String(),
}


def _as_judge_spec(generator: GeneratorSpec) -> JudgeSpec:
    """The client layer speaks ``JudgeSpec``; a generator is a judge without a template."""
    return JudgeSpec(
        name=generator.name, provider=generator.provider, model=generator.model,
        base_url=generator.base_url, api_key_env=generator.api_key_env,
        sampling=generator.sampling, concurrency=generator.concurrency,
    )


def _generator_hash(generator: GeneratorSpec) -> str:
    relevant = generator.model_dump(include={"provider", "model", "sampling"})
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def plan_generations(rows: pl.DataFrame, config: GenerationConfig) -> pl.DataFrame:
    """One line per missing candidate: (row, slot, generator), generators taken round-robin."""
    generators = config.generators
    by_index = {i: g.name for i, g in enumerate(generators)}
    hashes = {g.name: _generator_hash(g) for g in generators}
    missing = (
        rows.select("row_id", "content_hash", "instruction", pl.col("responses").list.len().alias("have"))
        .with_columns(pl.int_ranges("have", max(config.n_candidates, 0)).alias("slot"))
        .explode("slot")
        .drop_nulls("slot")
        .with_columns(pl.col("slot").cast(pl.Int32))
    )
    if missing.is_empty():
        return missing.with_columns(pl.lit(None, pl.String).alias("generator"), pl.lit(None, pl.String).alias("generation_id"))
    missing = missing.with_columns(
        (pl.col("slot") % len(generators)).replace_strict(by_index, return_dtype=pl.String).alias("generator")
    )
    key = pl.concat_str(
        [pl.col("content_hash"), pl.col("slot").cast(pl.String),
         pl.col("generator").replace_strict(hashes, return_dtype=pl.String)],
        separator="|",
    )
    return missing.with_columns(
        key.map_elements(lambda k: "gen" + hashlib.sha256(k.encode()).hexdigest()[:29], return_dtype=pl.String)
        .alias("generation_id")
    )


def write_part(store: Path, frame: pl.DataFrame) -> Path:
    """Write ``frame`` as a new part of ``store``: a name unique to this call (concurrent tasks
    never share one) that sorts by time, so the newest generation of an id is read last."""
    path = store / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)  # atomic: a reader never sees half a part
    return path


async def _generate(plan: pl.DataFrame, config: GenerationConfig) -> list[dict[str, Any]]:
    by_name = {g.name: g for g in config.generators}
    results: list[dict[str, Any]] = []
    for name, group in plan.group_by("generator", maintain_order=True):
        generator = by_name[str(name[0])]
        spec = _as_judge_spec(generator)
        client = make_client(spec)
        semaphore = asyncio.Semaphore(generator.concurrency)

        async def one(item: dict[str, Any], generator: GeneratorSpec = generator, client: Any = client,
                      spec: JudgeSpec = spec, semaphore: asyncio.Semaphore = semaphore) -> dict[str, Any]:
            async with semaphore:
                try:
                    completion = await client.complete(GENERATION_SYSTEM_PROMPT, item["instruction"], sampling=spec.sampling)
                    text, error = completion.text, None
                    if not text.strip():
                        text, error = None, "empty completion"
                except Exception as exc:  # noqa: BLE001 - recorded per item, never raised
                    # Client errors are redacted already; anything else (a library's own error)
                    # is redacted here before it is stored.
                    text, error = None, redact(f"{type(exc).__name__}: {exc}")
            return {
                "generation_id": item["generation_id"], "content_hash": item["content_hash"],
                "slot": item["slot"], "generator": generator.name, "model": generator.model,
                "text": text, "error": error,
            }

        try:
            results += await asyncio.gather(*(one(item) for item in group.iter_rows(named=True)))
        finally:
            await client.aclose()
    return results


def generate_candidates(rows: pl.DataFrame, config: GenerationConfig, store_dir: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows filled with generated candidates (new content hashes), and this run's generation log.

    Already-generated candidates are read from ``store_dir/generations``; only the rest is sent.
    """
    for generator in config.generators:
        if generator.mode != "live":
            raise ValueError(
                f"generator {generator.name!r}: mode {generator.mode!r} is not supported for "
                "generation yet; use mode 'live' (an OpenAI-compatible `vllm serve` covers GPUs)"
            )
    plan = plan_generations(rows, config)
    store = Path(store_dir) / "generations"
    store.mkdir(parents=True, exist_ok=True)
    parts, _ = set_aside_corrupt(sorted(store.glob("*.parquet")))
    cached = (
        pl.read_parquet(parts).filter(pl.col("text").is_not_null()).unique("generation_id", keep="last")
        if parts else pl.DataFrame(schema=GENERATIONS_SCHEMA)
    )
    todo = plan.join(cached.select("generation_id"), on="generation_id", how="anti")
    fresh = pl.DataFrame(asyncio.run(_generate(todo, config)) if todo.height else [], schema=GENERATIONS_SCHEMA)
    if fresh.height:
        write_part(store, fresh)
    log = pl.concat([cached.join(plan.select("generation_id"), on="generation_id", how="semi"), fresh])
    added = (
        plan.select("row_id", "generation_id", "slot")
        .join(log.filter(pl.col("text").is_not_null()), on="generation_id", how="inner")
        .sort("row_id", "slot")
        .group_by("row_id", maintain_order=True)
        .agg(pl.col("text").alias("new_texts"), pl.col("model").alias("new_models"))
    )
    filled = (
        rows.join(added, on="row_id", how="left")
        .with_columns(
            pl.concat_list("responses", pl.col("new_texts").fill_null(pl.lit([], pl.List(pl.String)))).alias("responses"),
            pl.concat_list("models", pl.col("new_models").fill_null(pl.lit([], pl.List(pl.String)))).alias("models"),
        )
        .drop("new_texts", "new_models")
    )
    filled = filled.with_columns(content_hashes(filled).alias("content_hash")).select(rows.columns)
    return filled, log
