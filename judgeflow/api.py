"""The Python API: judge rows from a notebook or a script, no Prefect, no deployment.

    import judgeflow
    result = judgeflow.judge(
        [{"instruction": "Name a prime.", "responses": ["7", "9"]}],
        judges=[{"provider": "openai-compatible", "base_url": "http://gpu-box:8000/v1",
                 "model": "prometheus-eval/prometheus-7b-v2.0", "api_key": "..."}],
    )
    result.frame    # the judgments, a polars DataFrame
    result.stats    # per judge: sent, answered from the store, ok, failed, retries, cost, requests/s
    built = judgeflow.build(rows, judges=[...])   # consensus, agreement and pairs too

A judge is a registered name (``judgeflow judges list``), a ``JudgeSpec``, or a mapping read
exactly as a config file's judge entry, plus ``api_key``: a key given here is used for this
call only, never written to the store, a record, a log line or the result (it is redacted from
every error message).

It runs the same core as the Prefect flow (rendering, clients, batch runner, GPU judges,
consensus, pairs) and the same judgment store, so results are cached between calls when a
``workdir`` is kept. Importing it stays light: the statistics, plotting and S3 libraries load
only when ``build`` (or a publish) needs them.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl
from pydantic import ValidationError

from judgeflow.api_result import JudgeResult, judge_stats
from judgeflow.clients.base import remember_secret
from judgeflow.config import BuildConfig, InputConfig
from judgeflow.errors import EnvironmentProblem
from judgeflow.judging.live import judge_live_sync
from judgeflow.judging.records import JudgmentSink, read_judgments
from judgeflow.loading import LoadResult, load_rows
from judgeflow.pipeline import JudgePlan, plan_judges, run_judgments
from judgeflow.registry import JudgeRegistry, resolve_entry
from judgeflow.schemas import JUDGMENTS_SCHEMA, ROWS_SCHEMA
from judgeflow.specs import JudgeSpec
from judgeflow.store import JudgmentStore

if TYPE_CHECKING:  # finalize pulls scipy, scikit-learn and krippendorff: build() imports it
    from judgeflow.finalize import Finalized

RowsLike = pl.DataFrame | Iterable[Mapping[str, Any]]
JudgesLike = Sequence[JudgeSpec | str | Mapping[str, Any]]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class JudgeUnavailableError(EnvironmentProblem, RuntimeError):
    """A judge that cannot run in this Python (its engine is not installed here): what, where
    (the judge) and how to fix it, as every user-facing error (``judgeflow.errors``)."""


def resolve_judges(judges: JudgesLike, registry: JudgeRegistry | None = None) -> list[JudgeSpec]:
    """Judge specs from names (looked up in the registry), mappings or ``JudgeSpec`` objects.

    An ``api_key`` in a mapping is dropped here (see ``judge``, which keeps it for the call)."""
    return _resolve(judges, registry)[0]


def _resolve(judges: JudgesLike, registry: JudgeRegistry | None) -> tuple[list[JudgeSpec], dict[str, str]]:
    """The specs, and the keys given inline by judge name (remembered for redaction at once)."""
    registry = registry or JudgeRegistry()
    specs: list[JudgeSpec] = []
    keys: dict[str, str] = {}
    for index, judge in enumerate(judges):
        if isinstance(judge, JudgeSpec):
            specs.append(judge)
        elif isinstance(judge, str):
            specs.append(registry.get(judge))
        elif isinstance(judge, Mapping):
            spec, key = _from_mapping(dict(judge), index, registry)
            specs.append(spec)
            if key is not None:
                keys[spec.name] = key
        else:
            raise TypeError(f"judges[{index}]: expected a judge name, a mapping or a JudgeSpec, "
                            f"got {type(judge).__name__}")
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"judge names must be unique; repeated: {', '.join(repeated)} (give each judge a 'name')")
    return specs, keys


def _from_mapping(values: dict[str, Any], index: int, registry: JudgeRegistry) -> tuple[JudgeSpec, str | None]:
    """One inline judge: its key taken out, its name defaulted from the model, then read the way
    a config file's judge entry is read (``resolve_entry``: a registered name is that judge, with
    the other keys as overrides; then ``BuildConfig`` validation), so both resolve alike."""
    key = values.pop("api_key", None)
    label = f"judges[{index}]" + (f" ({values['name']!r})" if isinstance(values.get("name"), str) else "")
    if key is not None:
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"{label}: api_key must be a non-empty string (or name a variable with api_key_env)")
        remember_secret(key)
    env = values.get("api_key_env")
    if env is not None and not (isinstance(env, str) and _ENV_NAME.fullmatch(env)):
        remember_secret(env if isinstance(env, str) else None)
        raise ValueError(
            f"{label}: api_key_env must name an environment variable (like OPENAI_API_KEY), and this "
            "value is not a variable name; to give the key itself, pass it as api_key (never stored)"
        )
    if "name" not in values:
        model = values.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError(f"{label}: give a registered judge's name, or a provider and model")
        values["name"] = _UNSAFE.sub("-", model.rsplit("/", 1)[-1]).strip(".-")[:48] or "judge"
    values = resolve_entry(values, registry, label)  # this registry's names first (a custom one too)
    try:
        config = BuildConfig.model_validate({"input": {"uri": "<memory>"}, "judges": [values]})
    except ValidationError as exc:
        raise ValueError(f"{label}: {_explain(exc)}") from None
    return config.judges[0], key


def _explain(exc: ValidationError) -> str:
    """One line per problem, naming the judge's key (not pydantic's path through BuildConfig)."""
    problems = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"][2:]) or "judge"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"unknown key {loc!r}" if error["type"] == "extra_forbidden" else f"{loc}: {message}")
    return "; ".join(problems)


def _check_runnable_here(specs: Sequence[JudgeSpec]) -> None:
    """GPU judges run in-process here: say how to get their engine (or an endpoint) instead of
    failing midway with ``No module named 'vllm'``."""
    for spec in specs:
        if spec.provider == "vllm" and spec.mode == "gpu" and importlib.util.find_spec("vllm") is None:
            endpoint = {"name": spec.name, "kind": spec.kind, "provider": "openai-compatible", "mode": "live",
                        "base_url": "http://HOST:8000/v1", "model": spec.model}
            raise JudgeUnavailableError(
                "this judge runs Prometheus on a local vLLM engine (provider vllm, mode gpu: the GPU "
                "pool's), and vllm is not installed in this Python",
                where=f"judge {spec.name!r}",
                fix="install vLLM on a CUDA machine (in an environment without Prefect, see docs/gpu.md), "
                f"or start `vllm serve {spec.model}` and judge through it: {endpoint}",
            )
        if spec.provider == "pairrm" and importlib.util.find_spec("llm_blender") is None:
            raise JudgeUnavailableError(
                "this judge runs PairRM through llm-blender, which is not installed in this Python",
                where=f"judge {spec.name!r}",
                fix="install the pairrm extra: pip install 'judgeflow[pairrm]'",
            )


def load(rows: RowsLike, *, max_text_chars: int = 100_000) -> LoadResult:
    """Validate in-memory rows exactly as files are validated (same mapping, same quarantine)."""
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(list(rows))
    with tempfile.TemporaryDirectory(prefix="judgeflow-api-") as tmp:
        path = Path(tmp) / "rows.jsonl"
        with path.open("wb") as handle:
            for record in frame.iter_rows(named=True):
                handle.write(orjson.dumps(record, default=str) + b"\n")
        return load_rows(path, max_text_chars=max_text_chars)


def _judge_on_gpu(spec: JudgeSpec, rows: pl.DataFrame, requests: pl.DataFrame, sink: JudgmentSink) -> None:
    """Prometheus 2 on a local vLLM engine, or PairRM through llm-blender, in this process."""
    if spec.provider == "vllm":
        from judgeflow.gpu.prometheus_vllm import judge_prometheus_vllm, load_engine

        judge_prometheus_vllm(spec, rows, requests, sink, engine=load_engine(spec.model, spec.engine))
    elif spec.provider == "pairrm":
        from judgeflow.gpu.pairrm import PairRM, judge_pairrm

        judge_pairrm(spec, rows, requests, sink, model=PairRM.load(spec.model))
    else:
        raise ValueError(f"judge {spec.name!r}: mode 'gpu' needs provider 'vllm' or 'pairrm'")


def _judge_into_store(
    plans: list[JudgePlan], rows: pl.DataFrame, store: JudgmentStore, workdir: Path, keys: Mapping[str, str]
) -> dict[str, float]:
    """Send what the store cannot answer; returns each judge's wall time in seconds."""
    seconds: dict[str, float] = {}
    batch_specs = []
    for plan in plans:
        spec = plan.spec
        if plan.pending.is_empty():
            continue
        started = time.perf_counter()
        if spec.mode == "batch":
            batch_specs.append(plan)
            continue
        if spec.mode == "live":
            with JudgmentSink(store.judge_dir(spec), prefix="api") as sink:
                judge_live_sync(spec, rows, plan.pending, sink, api_key=keys.get(spec.name))
        else:
            with JudgmentSink(store.judge_dir(spec), prefix="api-gpu") as sink:
                _judge_on_gpu(spec, rows, plan.pending, sink)
        seconds[spec.name] = time.perf_counter() - started
    if batch_specs:
        from judgeflow.batch.runner import make_provider, run_batch_judges

        started = time.perf_counter()
        pending_ids = pl.concat([p.pending.select("row_id") for p in batch_specs]).unique()
        out_dir = workdir / "batch-out"
        run_batch_judges(
            rows.join(pending_ids, on="row_id", how="semi"),
            [p.spec for p in batch_specs], store.root / "batches", out_dir,
            providers={p.spec.name: make_provider(p.spec, api_key=keys[p.spec.name])
                       for p in batch_specs if p.spec.name in keys},
            pending={p.spec.name: p.pending["request_id"].to_list() for p in batch_specs},
        )
        for plan in batch_specs:
            produced = read_judgments(out_dir / plan.spec.name).collect()
            # only answers are never recorded twice; a newer failure record may replace an older one
            new = produced.join(store.answered_ids(plan.spec, retry_failed=True), on="request_id", how="anti")
            with JudgmentSink(store.judge_dir(plan.spec), prefix="api-batch") as sink:
                sink.extend(new.iter_rows(named=True))
        for plan in batch_specs:  # they ran together: each is charged the whole wall time
            seconds[plan.spec.name] = time.perf_counter() - started
    return seconds


def judge(
    rows: RowsLike,
    judges: JudgesLike,
    *,
    workdir: str | Path | None = None,
    registry: JudgeRegistry | None = None,
    retry_failed: bool = False,
) -> JudgeResult:
    """Judge ``rows`` with ``judges``; one judgment per (row, item, order, judge), and what it took.

    ``rows``: a polars DataFrame or dicts in any layout ``judgeflow validate`` accepts. Invalid
    rows raise ``ValueError`` listing them (use ``load`` to inspect the quarantine instead).

    ``judges``: registered names (``"pairwise-preference"``), ``JudgeSpec`` objects, or mappings
    with a judge's fields: ``provider`` (openai, anthropic, openai-compatible), ``model``,
    ``base_url``, ``api_key_env`` (the variable holding the key) or ``api_key`` (the key itself,
    for this call only: never stored, logged or shown), ``concurrency``, ``kind``, ``rubric``...;
    ``name`` defaults to the model's.

    ``workdir`` keeps the judgment store: call again with the same one and nothing answered is
    re-sent; failures of the infrastructure (auth, connection, timeouts) are asked again, and
    with ``retry_failed`` the judges' own failures (unparseable, refused) too. A failed judgment
    has ``status`` ``failed``, ``error`` or ``not_sent`` and its reason in ``error``.

    Returns a ``JudgeResult``: ``.frame`` (the judgments), ``.stats`` (per judge: judgments,
    sent, from_store, ok, failed, retries, cost_usd, seconds, requests_per_s); printing it gives
    the totals.
    """
    started = time.perf_counter()
    valid = _valid_rows(rows)
    specs, keys = _resolve(judges, registry)
    return _judge_resolved(valid, specs, keys, workdir, retry_failed, started)


def _judge_resolved(
    valid: pl.DataFrame, specs: list[JudgeSpec], keys: Mapping[str, str], workdir: str | Path | None,
    retry_failed: bool, started: float,
) -> JudgeResult:
    _check_runnable_here(specs)
    with tempfile.TemporaryDirectory(prefix="judgeflow-") as scratch:
        root = Path(workdir) if workdir is not None else Path(scratch)
        store = JudgmentStore.at(root / "_store")
        plans = plan_judges(specs, valid, store, retry_failed=retry_failed)
        seconds = _judge_into_store(plans, valid, store, root, keys)
        frame = run_judgments(store, plan_judges(specs, valid, store))
    if not frame.columns:  # no judge at all: an empty frame that still has the columns
        frame = pl.DataFrame(schema=JUDGMENTS_SCHEMA)
    return JudgeResult(frame=frame, stats=judge_stats(frame, plans, seconds), seconds=time.perf_counter() - started)


def _valid_rows(rows: RowsLike) -> pl.DataFrame:
    """Rows in ``ROWS_SCHEMA``: already-validated frames pass through, anything else is loaded."""
    if isinstance(rows, pl.DataFrame) and rows.schema == pl.Schema(ROWS_SCHEMA):
        return rows
    loaded = load(rows)
    if loaded.quarantine.height:
        reasons = "; ".join(loaded.quarantine.get_column("reason").head(5).to_list())
        raise ValueError(f"{loaded.quarantine.height} invalid rows: {reasons}")
    return loaded.rows


def build(
    rows: RowsLike,
    judges: JudgesLike,
    *,
    workdir: str | Path | None = None,
    registry: JudgeRegistry | None = None,
    **config: Any,
) -> Finalized:
    """Judge, merge and draw preference pairs; ``config`` takes ``BuildConfig``'s other fields
    (``consensus={...}``, ``pairs={...}``). ``result.pairs`` is the TRL-ready DataFrame."""
    from judgeflow.finalize import finalize  # statistics libraries: only a build needs them

    started = time.perf_counter()
    valid = _valid_rows(rows)
    specs, keys = _resolve(judges, registry)
    build_config = BuildConfig(input=InputConfig(uri="<memory>"), judges=specs, **config)
    judged = _judge_resolved(valid, specs, keys, workdir, build_config.retry_failed, started)
    return finalize(build_config, valid, judged.frame, run_id="api")
