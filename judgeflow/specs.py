"""Judge specifications: what a judge is, declared by name in config.

A ``JudgeSpec`` is the llama-stack "scoring function" of judgeflow: a name, a kind of judging,
a provider and model, a prompt (built-in template + rubric, or a custom Jinja2 template), how to
read the score out of the reply, and how to aggregate. Every stage reads the same spec: the
renderer, the live and batch clients, the GPU judges and the consensus step.

``expand_requests`` turns rows x spec into the *requests* a judge must answer, each with a
stable ``request_id`` (the batch ``custom_id``), computed with polars expressions, not row loops.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
import polars as pl
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from judgeflow.names import check_name

JudgeKindName = Literal["absolute", "relative", "pairwise"]
ProviderName = Literal["openai", "anthropic", "openai-compatible", "vllm", "pairrm"]
ModeName = Literal["live", "batch", "gpu"]
AggregationName = Literal["average", "median", "categorical_count", "win_rate"]


class Sampling(BaseModel):
    """Decoding settings sent with every judge request (Prometheus 2's official defaults)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 0.9
    """Nucleus sampling mass."""
    max_tokens: int = 1024
    """Longest reply, in tokens."""
    repetition_penalty: float = 1.03
    """Only honoured by vLLM and OpenAI-compatible servers."""
    seed: int | None = None
    """Per-request sampling seed (vLLM, OpenAI-compatible servers, OpenAI): the same seed and
    prompt give the same reply, so a build can be replayed; empty: no seed."""

    @model_serializer(mode="wrap")
    def _omit_unset_seed(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No seed, no ``seed`` key: spec hashes, run ids and stored configs stay those of the
        builds made before the field existed."""
        data = handler(self)
        if data.get("seed", 0) is None:
            del data["seed"]
        return data


class EngineOptions(BaseModel):
    """How a GPU judge (provider vllm, mode gpu) starts ``vllm.LLM``; the flow's ``engine``
    parameter overrides these. They change where and how fast a judge runs, not what it is asked,
    so they are not part of the spec hash."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs one engine spans (2 for Prometheus 8x7B on 2 x 80 GB)."""
    dtype: str = "auto"
    """Weights and activations: auto (the checkpoint's), bfloat16, float16, float32."""
    max_model_len: int | None = Field(default=None, ge=16)
    """Longest prompt plus reply in tokens; empty: the model's own (32k for Prometheus 2)."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Share of the device's memory vLLM may take (weights and KV cache)."""
    kv_cache_memory_bytes: int | None = Field(default=None, gt=0)
    """KV-cache size in bytes; set, it replaces gpu_memory_utilization's sizing (needed on a CPU
    or a shared device, where vLLM's memory check would refuse to start)."""
    enforce_eager: bool = False
    """No CUDA graphs: faster start, slower decoding (and the only mode of the CPU backend)."""
    seed: int = 0
    """The engine's own seed (requests without a sampling seed draw from it)."""
    download_dir: str | None = None
    """Where the checkpoint is downloaded; empty: the Hugging Face cache."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Any other ``vllm.LLM`` keyword, passed as given (e.g. max_num_batched_tokens)."""


class BatchSettings(BaseModel):
    """How a batch judge splits, polls and re-submits (provider limits are the defaults' ceiling)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_requests_per_batch: int = 50_000
    """Split a judge's requests into batches of at most this many (provider limit: 50,000 OpenAI, 100,000 Anthropic)."""
    max_bytes_per_batch: int = 190 * 1024 * 1024
    """... and at most this many bytes of input."""
    poll_initial_s: float = 5.0
    """First wait between status polls."""
    poll_max_s: float = 300.0
    """Longest wait between status polls."""
    poll_backoff: float = 1.6
    """Each wait is the previous one times this."""
    deadline_s: float = 26 * 3600.0
    """Cancel batches still running after this long; their requests are asked again next run."""
    max_rounds: int = 3
    """Batch rounds per run, the first included: requests that did not end ok are re-submitted
    until then; a later run that still needs them continues with new rounds."""
    cancel_on_flow_cancel: bool = True
    """Cancel the provider's batches when the flow run is cancelled."""


class JudgeSpec(BaseModel):
    """One named judge. Secrets are never part of a spec: only the *name* of the env var/block."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = Field(description="Names the judge in the outputs and its folder in the store.")
    kind: JudgeKindName = "absolute"
    """absolute: a 1-5 score per candidate; relative/pairwise: A or B for a pair."""
    provider: ProviderName = "openai"
    """Who serves the judge model."""
    mode: ModeName = "live"
    """live requests, the provider's Batch API (half price, hours), or the GPU pool."""
    model: str = "gpt-4o-mini"
    """Model name as the provider spells it."""
    base_url: str | None = None
    """Endpoint for openai-compatible servers (e.g. vllm serve); empty: the provider's."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key, resolved at call time (never the key itself)."""
    template: str = "prometheus"
    """prometheus, pairwise-json, or custom (with custom_template)."""
    custom_template: str | None = None
    """Jinja2 text of the prompt, with template custom."""
    system_prompt: str | None = None
    """Replaces the template's system prompt; empty: the template's own."""
    rubric: str = "helpfulness"
    """A rubric name (judgeflow judges rubrics) or the rubric's text."""
    variant: Literal["library", "paper"] = "library"
    """Prometheus prompt wording: prometheus-eval's library or the paper's."""
    use_reference: bool = True
    """Show the row's reference answer to the judge when it has one."""
    score_regex: str | None = None
    """Custom templates: the last match's first group is the score or verdict."""
    aggregation: list[AggregationName] = Field(default_factory=lambda: ["average"])
    """How this judge's scores are summarised per candidate."""
    both_orders: bool = True
    """Pairwise kinds: judge (A,B) and (B,A), so position bias shows as a tie."""
    sampling: Sampling = Field(default_factory=Sampling)
    """Decoding settings sent with every request."""
    max_parse_retries: int = 3
    """Re-asks of a reply with no readable verdict."""
    concurrency: int = 64
    """Requests in flight at once."""
    requests_per_minute: int | None = None
    """Client-side cap; empty: none beyond the pool's rate limit."""
    tokens_per_minute: int | None = None
    """Client-side cap on tokens; empty: none."""
    timeout_s: float = 120.0
    """Timeout of one request."""
    max_retries: int = 6
    """Retries of a request on 429, 5xx or a dropped connection."""
    transport: Literal["fast", "sdk"] = "fast"
    """fast: judgeflow's pooled HTTP client; sdk: the provider's official SDK."""
    price_input_per_mtok: float | None = None
    """Dollars per million input tokens; empty: judgeflow's price table."""
    price_output_per_mtok: float | None = None
    """Dollars per million output tokens; empty: judgeflow's price table."""
    weight: float = 1.0
    """This judge's weight in the consensus vote."""
    batch: BatchSettings = Field(default_factory=BatchSettings)
    """Batch-API settings (mode batch)."""
    engine: EngineOptions = Field(default_factory=EngineOptions)
    """vLLM engine settings (provider vllm, mode gpu)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value, "judge name", max_len=48, why="it names a folder in the store")

    @field_validator("rubric")
    @classmethod
    def _rubric_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("rubric is empty: name a rubric (e.g. helpfulness) or give its text")
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> JudgeSpec:
        if self.template == "custom" and not self.custom_template:
            raise ValueError(f"judge {self.name!r}: template 'custom' needs custom_template")
        if self.mode == "batch" and self.provider not in ("openai", "anthropic"):
            raise ValueError(
                f"judge {self.name!r}: mode 'batch' needs provider openai or anthropic "
                f"(got {self.provider!r}; vllm serve has no Batch API)"
            )
        if self.mode == "gpu" and self.provider not in ("vllm", "pairrm"):
            raise ValueError(
                f"judge {self.name!r}: mode 'gpu' runs provider 'vllm' (Prometheus on vllm.LLM) or "
                f"'pairrm' (llm-blender); got {self.provider!r}"
            )
        if self.provider == "pairrm" and self.mode != "gpu":
            raise ValueError(f"judge {self.name!r}: provider 'pairrm' runs on the GPU pool (mode 'gpu')")
        if self.provider == "pairrm" and self.kind == "absolute":
            raise ValueError(f"judge {self.name!r}: PairRM only ranks pairs (kind relative)")
        return self

    @property
    def pairwise(self) -> bool:
        """True when the judge compares two candidates rather than grading one."""
        return self.kind in ("relative", "pairwise")

    def spec_hash(self) -> str:
        """Hash of everything that changes a verdict (not limits, weights or endpoints).

        Judgments are cached by (row content hash, spec hash): changing the rubric re-judges,
        raising the concurrency does not.
        """
        relevant = self.model_dump(
            include={
                "kind", "provider", "model", "template", "custom_template", "system_prompt",
                "rubric", "variant", "use_reference", "score_regex", "sampling",
            }
        )
        return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


REQUESTS_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "row_id": pl.String(),
    "content_hash": pl.String(),
    "candidate_a": pl.Int32(),
    "candidate_b": pl.Int32(),
    "order": pl.String(),
}


def expand_requests(rows: pl.DataFrame, spec: JudgeSpec) -> pl.DataFrame:
    """Every (row, item, order) ``spec`` must judge, with a stable ``request_id``.

    * absolute: one request per candidate (``candidate_b`` null, ``order`` null);
    * relative/pairwise: one request per unordered candidate pair i<j, shown as (i, j) with
      order "AB", plus (j, i) with order "BA" when ``both_orders``.

    ``request_id`` = "jf" + 30 hex chars of sha256(content_hash, spec_hash, a, b, order): valid as an
    OpenAI and an Anthropic ``custom_id`` and the same on every run of the same build.
    """
    n = pl.col("responses").list.len()
    base = rows.select("row_id", "content_hash", n.alias("_n"))
    if spec.kind == "absolute":
        items = (
            base.with_columns(pl.int_ranges(0, pl.col("_n"), dtype=pl.Int32).alias("candidate_a"))
            .explode("candidate_a")
            .drop_nulls("candidate_a")
            .with_columns(
                pl.lit(None, dtype=pl.Int32).alias("candidate_b"),
                pl.lit(None, dtype=pl.String).alias("order"),
            )
        )
    else:
        firsts = (
            base.with_columns(pl.int_ranges(0, pl.col("_n"), dtype=pl.Int32).alias("i"))
            .explode("i")
            .drop_nulls("i")
        )
        pairs = (
            firsts.with_columns(pl.int_ranges(pl.col("i") + 1, pl.col("_n"), dtype=pl.Int32).alias("j"))
            .explode("j")
            .drop_nulls("j")
        )
        ab = pairs.select(
            "row_id", "content_hash", pl.col("i").alias("candidate_a"),
            pl.col("j").alias("candidate_b"), pl.lit("AB").alias("order"),
        )
        frames = [ab]
        if spec.both_orders:
            frames.append(
                pairs.select(
                    "row_id", "content_hash", pl.col("j").alias("candidate_a"),
                    pl.col("i").alias("candidate_b"), pl.lit("BA").alias("order"),
                )
            )
        items = pl.concat(frames)
    spec_hash = spec.spec_hash()
    key = pl.concat_str(
        [
            pl.col("content_hash"),
            pl.lit(spec_hash),
            pl.col("candidate_a").cast(pl.String),
            pl.col("candidate_b").cast(pl.String).fill_null("-"),
            pl.col("order").fill_null("-"),
        ],
        separator="|",
    )
    request_id = pl.lit("jf") + key.map_batches(_sha256_hex30, return_dtype=pl.String)
    return items.select(
        request_id.alias("request_id"),
        "row_id",
        "content_hash",
        pl.col("candidate_a").cast(pl.Int32),
        pl.col("candidate_b").cast(pl.Int32),
        pl.col("order").cast(pl.String),
    ).sort("row_id", "candidate_a", "candidate_b", "order", nulls_last=True)


def _sha256_hex30(keys: pl.Series) -> pl.Series:
    """sha256 per key; hashlib on the column's values (C speed, no per-row Python objects kept)."""
    return pl.Series(
        [hashlib.sha256(k.encode()).hexdigest()[:30] for k in keys.to_list()], dtype=pl.String
    )
