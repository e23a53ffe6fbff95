"""Batch request files: one JSONL line per judge request, split at the providers' limits.

Why streaming: a 50,000-request OpenAI file can reach 200 MB, so lines are serialised with orjson
and written one at a time to an open file handle; nothing holds a whole file in memory.

Why a chunk key: each chunk file's sha256 (of its exact bytes, judge and round) is the identity the
ledger uses to re-attach a batch on a re-run instead of paying for it twice. The same build (same
rows, same spec, same order from ``expand_requests``) always produces the same chunks and keys.

Each chunk has a sidecar Parquet file with the requests it covers (``REQUESTS_SCHEMA`` columns plus
``template_hash``), so collecting a batch joins results back by ``custom_id`` without re-rendering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import polars as pl

from judgeflow.clients.fast_anthropic import anthropic_body
from judgeflow.clients.fast_openai import openai_body
from judgeflow.specs import REQUESTS_SCHEMA, JudgeSpec

OPENAI_ENDPOINT = "/v1/chat/completions"

#: (max requests, max bytes) per batch, as the providers document them.
PROVIDER_LIMITS: dict[str, tuple[int, int]] = {
    "openai": (50_000, 200 * 1024 * 1024),
    "anthropic": (100_000, 256 * 1024 * 1024),
}

#: Bytes kept free under the byte limit for the envelope the provider adds around the lines
#: (Anthropic's ``{"requests":[...]}`` body, multipart headers of the OpenAI upload).
ENVELOPE_MARGIN = 64 * 1024

SIDECAR_SCHEMA: dict[str, pl.DataType] = {**REQUESTS_SCHEMA, "template_hash": pl.String()}


class PromptLike(Protocol):
    """What the renderer returns per request (``judgeflow.prompts.RenderedPrompt``)."""

    system: str | None
    user: str
    template_hash: str


@dataclass(frozen=True)
class Chunk:
    """One batch input file on disk: what a single provider batch will cover."""

    judge: str
    provider: str
    round: int
    index: int
    path: Path
    meta_path: Path
    count: int
    bytes: int
    chunk_key: str

    def custom_ids(self) -> list[str]:
        """The request ids (custom_ids) this chunk covers, in file order."""
        return pl.read_parquet(self.meta_path, columns=["request_id"])["request_id"].to_list()

    def as_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge, "provider": self.provider, "round": self.round,
            "index": self.index, "path": str(self.path), "meta_path": str(self.meta_path),
            "count": self.count, "bytes": self.bytes, "chunk_key": self.chunk_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        return cls(
            judge=data["judge"], provider=data["provider"], round=int(data["round"]),
            index=int(data["index"]), path=Path(data["path"]), meta_path=Path(data["meta_path"]),
            count=int(data["count"]), bytes=int(data["bytes"]), chunk_key=data["chunk_key"],
        )


def batch_limits(spec: JudgeSpec) -> tuple[int, int]:
    """Effective (requests, bytes) per batch: the spec's settings, never above the provider's."""
    max_n, max_b = PROVIDER_LIMITS[spec.provider]
    n = min(spec.batch.max_requests_per_batch, max_n)
    b = min(spec.batch.max_bytes_per_batch, max_b - ENVELOPE_MARGIN)
    return max(1, n), max(1, b)


def request_line(spec: JudgeSpec, custom_id: str, prompt: PromptLike) -> bytes:
    """One JSONL line (with trailing newline) in the provider's batch input format.

    The bodies come from the live clients' builders, so a batch judge sends exactly what the
    same judge sends live (same sampling, same fields).
    """
    if spec.provider == "openai":
        body = openai_body(
            spec.model, prompt.system, prompt.user, spec.sampling, None, vllm_extras=False
        )
        obj: dict[str, Any] = {
            "custom_id": custom_id, "method": "POST", "url": OPENAI_ENDPOINT, "body": body,
        }
    elif spec.provider == "anthropic":
        params = anthropic_body(spec.model, prompt.system, prompt.user, spec.sampling)
        obj = {"custom_id": custom_id, "params": params}
    else:  # pragma: no cover - JudgeSpec validation already forbids this
        raise ValueError(f"provider {spec.provider!r} has no Batch API")
    return orjson.dumps(obj) + b"\n"


class _ChunkWriter:
    """Writes lines into successive chunk files, closing one when the next line would not fit."""

    def __init__(self, spec: JudgeSpec, directory: Path, round_: int, start_index: int = 0) -> None:
        self.spec = spec
        self.directory = directory
        self.round = round_
        self.max_n, self.max_b = batch_limits(spec)
        self.index = start_index
        self.chunks: list[Chunk] = []
        self._fh: Any = None
        self._hash: Any = None
        self._n = 0
        self._b = 0
        self._meta: list[dict[str, Any]] = []
        self.directory.mkdir(parents=True, exist_ok=True)

    def _open(self) -> None:
        self._tmp = self.directory / f"chunk-{self.index:05d}.jsonl.tmp"
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in _close
        self._hash = hashlib.sha256(f"{self.spec.name}|{self.spec.provider}|{self.round}|".encode())
        self._n = self._b = 0
        self._meta = []

    def add(self, line: bytes, meta: dict[str, Any]) -> None:
        if len(line) > self.max_b:
            raise ValueError(
                f"judge {self.spec.name!r}: request {meta['request_id']} is {len(line)} bytes, "
                f"larger than the batch byte limit {self.max_b}"
            )
        if self._fh is not None and (self._n + 1 > self.max_n or self._b + len(line) > self.max_b):
            self._close()
        if self._fh is None:
            self._open()
        self._fh.write(line)
        self._hash.update(line)
        self._n += 1
        self._b += len(line)
        self._meta.append(meta)

    def _close(self) -> None:
        if self._fh is None:
            return
        self._fh.flush()
        self._fh.close()
        self._fh = None
        key = self._hash.hexdigest()[:24]
        path = self.directory / f"chunk-{self.index:05d}-{key}.jsonl"
        meta_path = path.with_suffix(".meta.parquet")
        pl.DataFrame(self._meta, schema=SIDECAR_SCHEMA).write_parquet(meta_path)
        self._tmp.replace(path)
        self.chunks.append(
            Chunk(self.spec.name, self.spec.provider, self.round, self.index, path, meta_path,
                  self._n, self._b, key)
        )
        self.index += 1

    def finish(self) -> list[Chunk]:
        self._close()
        return self.chunks


def _meta(request: Mapping[str, Any], template_hash: str | None) -> dict[str, Any]:
    return {
        "request_id": request["request_id"], "row_id": request["row_id"],
        "content_hash": request.get("content_hash"), "candidate_a": request["candidate_a"],
        "candidate_b": request.get("candidate_b"), "order": request.get("order"),
        "template_hash": template_hash,
    }


def write_chunks(
    spec: JudgeSpec,
    requests: pl.DataFrame,
    prompts: Iterable[PromptLike],
    directory: str | Path,
    *,
    round_: int = 1,
) -> list[Chunk]:
    """Write ``requests`` (from ``expand_requests``) with their rendered ``prompts`` (same order)
    as chunk files under ``directory``; returns the chunks in order.

    Splits when the next line would pass the request-count or byte limit of ``batch_limits``.
    """
    writer = _ChunkWriter(spec, Path(directory), round_)
    prompt_iter: Iterator[PromptLike] = iter(prompts)
    for request in requests.iter_rows(named=True):
        try:
            prompt = next(prompt_iter)
        except StopIteration:
            raise ValueError("fewer rendered prompts than requests") from None
        writer.add(request_line(spec, request["request_id"], prompt), _meta(request, prompt.template_hash))
    if next(prompt_iter, None) is not None:
        raise ValueError("more rendered prompts than requests")
    return writer.finish()


def follow_up_chunks(
    spec: JudgeSpec, parents: Iterable[Chunk], custom_ids: set[str], directory: str | Path, *, round_: int
) -> list[Chunk]:
    """Chunks for a follow-up round: the parents' lines whose custom_id is in ``custom_ids``.

    Lines are copied byte for byte (no re-rendering), so the same failures always give the same
    follow-up chunk keys: what lets a re-run find a follow-up batch it already paid for.
    """
    writer = _ChunkWriter(spec, Path(directory), round_)
    for parent in parents:
        meta = pl.read_parquet(parent.meta_path).filter(pl.col("request_id").is_in(list(custom_ids)))
        wanted = {row["request_id"]: row for row in meta.iter_rows(named=True)}
        if not wanted:
            continue
        with open(parent.path, "rb") as fh:
            for line in fh:
                cid = orjson.loads(line)["custom_id"]
                if cid in wanted:
                    writer.add(line, wanted[cid])
    return writer.finish()


def iter_lines(chunk: Chunk) -> Iterator[dict[str, Any]]:
    """The chunk's request lines, parsed one at a time (Anthropic's create takes a list)."""
    with open(chunk.path, "rb") as fh:
        for line in fh:
            yield orjson.loads(line)
