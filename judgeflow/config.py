"""The build's parameters: one typed model, so the Prefect UI shows a usable form.

``BuildConfig`` is what `judgeflow run CONFIG.yaml`, the demo, the Python API and the nightly
deployment all take. It holds no secrets: judges name the environment variable (or Prefect
Secret block) that holds their key, and S3 credentials come from the AWS chain or a block.
Unknown keys are rejected with the key's name, so a typo in a YAML file fails loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from judgeflow.names import check_name
from judgeflow.specs import JudgeSpec, Sampling


class _Strict(BaseModel):
    # attribute docstrings become field descriptions: the Prefect UI shows them on the form
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class InputConfig(_Strict):
    """Where the rows come from and how to read them."""

    uri: str = Field(description="Local path or s3://bucket/key of a JSONL, Parquet or CSV file.")
    format: Literal[
        "jsonl", "parquet", "csv",  # file types
        "judgeflow", "openpo", "distilabel", "pairwise", "ultrafeedback", "preference", "messages",
        "hh-rlhf", "trl",  # dataset formats (judgeflow.formats.DATASET_FORMATS)
    ] | None = Field(
        default=None,
        description="A file type (jsonl, parquet, csv) or a dataset format (ultrafeedback, preference, "
        "hh-rlhf, trl, messages, distilabel, openpo, pairwise, judgeflow); empty: recognised from the "
        "file name and the first rows.",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Column mapping overrides, e.g. {'instruction': 'question'}.",
    )
    max_text_chars: int = Field(default=100_000, gt=0, description="Longer fields are quarantined.")
    limit: int | None = Field(default=None, gt=0, description="Judge only the first N valid rows.")

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        """A typo in a field name fails here, not after Prefect has started."""
        from judgeflow.columns import check_fields

        check_fields(columns, "input.columns")
        return columns


class S3Settings(_Strict):
    """An S3-compatible endpoint. Credentials are NOT here: AWS chain or a Prefect block."""

    endpoint_url: str | None = None
    """S3-compatible endpoint (MinIO, R2, Ceph ...); empty for AWS S3."""
    region: str | None = None
    """Region of the bucket; empty: from the AWS chain."""
    aws_credentials_block: str | None = Field(
        default=None, description="Name of a prefect-aws AwsCredentials block to use."
    )
    multipart_threshold_mb: int = 64
    """Files larger than this are uploaded in parts."""


class OutputConfig(_Strict):
    """Where results go: a local folder always, and an s3:// prefix to publish to."""

    dir: str = Field(default="./judgeflow-out", description="Local working/output folder.")
    publish_uri: str | None = Field(default=None, description="s3://bucket/prefix to publish to.")
    formats: list[Literal["parquet", "jsonl"]] = Field(default_factory=lambda: ["parquet"])
    """File formats of the published tables (Parquet always; JSONL copies on request)."""
    s3: S3Settings = Field(default_factory=S3Settings)
    """Endpoint and credentials block for s3:// inputs and publishing."""


class GeneratorSpec(_Strict):
    """A model that writes candidate responses when rows have too few."""

    name: str
    """Names the generator (and its responses' model column)."""
    provider: Literal["openai", "anthropic", "openai-compatible", "vllm"] = "openai"
    """Who serves the generator model."""
    model: str
    """Model name as the provider spells it."""
    base_url: str | None = None
    """Endpoint for openai-compatible servers; empty: the provider's."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key (never the key)."""
    mode: Literal["live", "batch", "gpu"] = "live"
    """live requests, the provider's Batch API, or the GPU pool."""
    sampling: Sampling = Field(default_factory=lambda: Sampling(temperature=0.7, max_tokens=512))
    """Decoding settings for generation."""
    concurrency: int = 64
    """Requests in flight at once."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value, "generator name", max_len=48, why="it is used as a judge name")


class GenerationConfig(_Strict):
    """Optional stage: fill rows up to ``n_candidates`` responses before judging."""

    enabled: bool = False
    """Generate candidates before judging."""
    n_candidates: int = Field(default=2, ge=2)
    """Fill every row up to this many candidate responses."""
    generators: list[GeneratorSpec] = Field(default_factory=list)
    """Models that write the missing candidates, used in turn."""

    @model_validator(mode="after")
    def _needs_generators(self) -> GenerationConfig:
        if self.enabled and not self.generators:
            raise ValueError("generation.enabled needs at least one entry in generation.generators")
        return self


class ConsensusConfig(_Strict):
    """How several judges' verdicts merge into one (see docs/consensus.md)."""

    score_method: Literal["mean", "median"] = "mean"
    """How absolute scores of several judges combine."""
    tie_policy: Literal["tie", "drop"] = "tie"
    """A tied vote: keep it as a tie, or drop the comparison."""
    min_judges: int = Field(default=1, ge=1)
    """Comparisons with fewer usable judges are left out."""
    unanimous_only: bool = False
    """Keep only comparisons every judge agrees on."""


class PairsConfig(_Strict):
    """How preference pairs are drawn from the merged verdicts."""

    source: Literal["auto", "pairwise", "scores"] = "auto"
    """Draw pairs from pairwise verdicts, from scores, or whatever the judges gave (auto)."""
    strategy: Literal["best-vs-worst", "all-pairs"] = "best-vs-worst"
    """One best-vs-worst pair per row, or every ordered pair with a margin."""
    min_margin: float = Field(default=1.0, ge=0)
    """Smallest score gap for a scored pair."""
    max_length_ratio: float | None = Field(default=None, gt=1)
    """Drop pairs whose chosen/rejected length ratio exceeds this (length bias guard)."""


class GpuDispatchConfig(_Strict):
    """How the build reaches its GPU judges (vLLM Prometheus, PairRM).

    In process (the demo, tests, a single GPU box) or, when a GPU work pool exists, through
    ``run_deployment`` of the GPU deployments, which then need shared storage (an s3:// or
    network ``output.dir``) to read the chunk files and write their judgments.
    """

    use_deployments: bool = False
    """Run GPU judges through their deployments on the GPU pool instead of in process."""
    vllm_deployment: str = "prometheus-vllm-judge/prometheus-vllm"
    """Deployment that runs Prometheus on vLLM."""
    pairrm_deployment: str = "pairrm-judge/pairrm"
    """Deployment that runs PairRM."""
    timeout_s: float = Field(default=6 * 3600.0, gt=0)
    """How long the build waits for a GPU run."""


class BuildConfig(_Strict):
    """Everything one preference-dataset build needs."""

    dataset: str = Field(default="preferences", description="Folder and key part of every run.")
    input: InputConfig
    """Where the rows come from."""
    judges: list[JudgeSpec] = Field(min_length=1)
    """The judges, each by registered name or declared in full."""
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    """Optional candidate generation before judging."""
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig)
    """How the judges' verdicts merge."""
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    """How preference pairs are drawn."""
    output: OutputConfig = Field(default_factory=OutputConfig)
    """Where the run is written and published."""
    gpu: GpuDispatchConfig = Field(default_factory=GpuDispatchConfig)
    """How GPU judges are reached."""
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

    @field_validator("judges", mode="before")
    @classmethod
    def _resolve_registered_judges(cls, judges: Any) -> Any:
        """A registered name IS that judge (``judgeflow judges list``), with overrides; an unknown
        name without provider/model is an error naming the closest ones (``resolve_entries``)."""
        from judgeflow.registry import resolve_entries

        return resolve_entries(judges)

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
    import yaml  # config files only: ``judgeflow.judge`` builds its config in Python

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
    import yaml

    Path(path).write_text(
        yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False),
        encoding="utf-8",
    )
