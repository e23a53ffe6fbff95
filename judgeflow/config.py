"""The build's parameters: one typed model, so the Prefect UI shows a usable form.

``BuildConfig`` is what `judgeflow run CONFIG.yaml`, the demo, the Python API and the nightly
deployment all take. It holds no secrets: judges name the environment variable (or Prefect
Secret block) that holds their key, and S3 credentials come from the AWS chain or a block.
Unknown keys are rejected with the key's name, so a typo in a YAML file fails loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from judgeflow.names import check_name
from judgeflow.specs import JudgeSpec, Sampling


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputConfig(_Strict):
    """Where the rows come from and how to read them."""

    uri: str = Field(description="Local path or s3://bucket/key of a JSONL, Parquet or CSV file.")
    format: Literal["jsonl", "parquet", "csv"] | None = Field(
        default=None, description="File format; guessed from the extension when empty."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Column mapping overrides, e.g. {'instruction': 'question'}.",
    )
    max_text_chars: int = Field(default=100_000, gt=0, description="Longer fields are quarantined.")
    limit: int | None = Field(default=None, gt=0, description="Judge only the first N valid rows.")


class S3Settings(_Strict):
    """An S3-compatible endpoint. Credentials are NOT here: AWS chain or a Prefect block."""

    endpoint_url: str | None = None
    region: str | None = None
    aws_credentials_block: str | None = Field(
        default=None, description="Name of a prefect-aws AwsCredentials block to use."
    )
    multipart_threshold_mb: int = 64


class OutputConfig(_Strict):
    """Where results go: a local folder always, and an s3:// prefix to publish to."""

    dir: str = Field(default="./judgeflow-out", description="Local working/output folder.")
    publish_uri: str | None = Field(default=None, description="s3://bucket/prefix to publish to.")
    formats: list[Literal["parquet", "jsonl"]] = Field(default_factory=lambda: ["parquet"])
    s3: S3Settings = Field(default_factory=S3Settings)


class GeneratorSpec(_Strict):
    """A model that writes candidate responses when rows have too few."""

    name: str
    provider: Literal["openai", "anthropic", "openai-compatible", "vllm"] = "openai"
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    mode: Literal["live", "batch", "gpu"] = "live"
    sampling: Sampling = Field(default_factory=lambda: Sampling(temperature=0.7, max_tokens=512))
    concurrency: int = 64

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value, "generator name", max_len=48, why="it is used as a judge name")


class GenerationConfig(_Strict):
    """Optional stage: fill rows up to ``n_candidates`` responses before judging."""

    enabled: bool = False
    n_candidates: int = Field(default=2, ge=2)
    generators: list[GeneratorSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_generators(self) -> GenerationConfig:
        if self.enabled and not self.generators:
            raise ValueError("generation.enabled needs at least one entry in generation.generators")
        return self


class ConsensusConfig(_Strict):
    """How several judges' verdicts merge into one (see docs/consensus.md)."""

    score_method: Literal["mean", "median"] = "mean"
    tie_policy: Literal["tie", "drop"] = "tie"
    min_judges: int = Field(default=1, ge=1)
    unanimous_only: bool = False


class PairsConfig(_Strict):
    """How preference pairs are drawn from the merged verdicts."""

    source: Literal["auto", "pairwise", "scores"] = "auto"
    strategy: Literal["best-vs-worst", "all-pairs"] = "best-vs-worst"
    min_margin: float = Field(default=1.0, ge=0)
    max_length_ratio: float | None = Field(default=None, gt=1)


class GpuDispatchConfig(_Strict):
    """How the build reaches its GPU judges (vLLM Prometheus, PairRM).

    In process (the demo, tests, a single GPU box) or, when a GPU work pool exists, through
    ``run_deployment`` of the GPU deployments, which then need shared storage (an s3:// or
    network ``output.dir``) to read the chunk files and write their judgments.
    """

    use_deployments: bool = False
    vllm_deployment: str = "prometheus-vllm-judge/prometheus-vllm"
    pairrm_deployment: str = "pairrm-judge/pairrm"
    timeout_s: float = Field(default=6 * 3600.0, gt=0)


class BuildConfig(_Strict):
    """Everything one preference-dataset build needs."""

    dataset: str = Field(default="preferences", description="Folder and key part of every run.")
    input: InputConfig
    judges: list[JudgeSpec] = Field(min_length=1)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig)
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    gpu: GpuDispatchConfig = Field(default_factory=GpuDispatchConfig)
    budget_usd: float | None = Field(default=None, gt=0, description="Stop new requests past this.")
    chunk_size: int = Field(default=5_000, ge=1, description="Requests per Prefect task.")
    cache: bool = Field(default=True, description="Reuse judgments already in the output store.")
    retry_failed: bool = Field(
        default=False,
        description="Ask again the requests a judge itself failed (unparseable, refused, prompt too "
        "long). Failures of the infrastructure (auth, connection, timeouts, budget) are always asked again.",
    )
    max_failed_fraction: float = Field(
        default=0.05, ge=0, le=1,
        description="The build fails (exit 1, flow run Failed, nothing published) when a judge fails "
        "more than this fraction of its requests.",
    )
    run_id: str | None = Field(default=None, description="Defaults to a hash of the config and input.")

    @field_validator("dataset", "run_id")
    @classmethod
    def _safe_path_part(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Both become a folder under ``output.dir`` and a part of the published keys."""
        return value if value is None else check_name(value, str(info.field_name))

    @field_validator("judges")
    @classmethod
    def _unique_judge_names(cls, judges: list[JudgeSpec]) -> list[JudgeSpec]:
        names = [j.name for j in judges]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"judge names must be unique; repeated: {', '.join(dupes)}")
        return judges


def load_config(path: str | Path) -> BuildConfig:
    """Read a YAML (or JSON) build config; errors name the file and the offending key."""
    path = Path(path)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"config {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"config {path} must be a mapping at the top level")
    return BuildConfig.model_validate(data)


def dump_config(config: BuildConfig, path: str | Path) -> None:
    """Write ``config`` as YAML a person can copy and edit."""
    Path(path).write_text(
        yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False),
        encoding="utf-8",
    )
