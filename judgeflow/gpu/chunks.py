"""Chunks of a GPU judge's requests file: slicing, resume and part-file names.

Plain functions (polars only), shared by the Prefect chunk tasks (``tasks/gpu.py``) and the
out-of-process vLLM runner (``judgeflow.gpu.vllm_runner``), which runs in an environment
without Prefect. Both must skip the same already-judged ids and name their part files the same
way, so a chunk judged by either one is resumed by the other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from judgeflow.judging.records import read_judgments
from judgeflow.specs import JudgeSpec


def scan_table(path: str) -> pl.LazyFrame:
    """Rows or requests from Parquet (the pipeline's chunk files) or JSON Lines."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return pl.scan_ndjson(path)
    return pl.scan_parquet(path)


def load_chunk(
    rows_path: str, requests_path: str, offset: int, length: int | None, out_dir: str
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(rows the chunk needs, the chunk's requests not yet in ``out_dir``, how many were skipped).

    ``length`` None: to the end of the file. Reading a slice (not a scratch file) means a
    retried task finds exactly the same requests.
    """
    requests = scan_table(requests_path).slice(offset, length).collect()
    done = read_judgments(out_dir).select("request_id").collect()
    pending = requests.join(done, on="request_id", how="anti") if done.height else requests
    rows = scan_table(rows_path).join(
        pending.lazy().select("row_id").unique(), on="row_id", how="semi"
    ).collect()
    return rows, pending, requests.height - pending.height


def require_model(judge: JudgeSpec, example: str) -> str:
    """The checkpoint the spec names; JudgeSpec's API default (an OpenAI model) is a mistake here."""
    if judge.model == JudgeSpec.model_fields["model"].default:
        raise ValueError(
            f"judge {judge.name!r} (provider {judge.provider}): set model to a checkpoint, "
            f"e.g. {example!r} or a local directory"
        )
    return judge.model


def chunk_prefix(kind: str, spec: JudgeSpec, requests_path: str, offset: int) -> str:
    """Part-file prefix unique to (judge, requests file, slice): parallel runs never collide."""
    digest = hashlib.sha1(f"{Path(requests_path).resolve()}|{offset}".encode()).hexdigest()[:10]
    return f"{kind}-{spec.name}-{digest}"
