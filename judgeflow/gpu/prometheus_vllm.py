"""Prometheus 2 grading with vLLM's offline engine (``vllm.LLM``), the way prometheus-eval does it.

* Prompts: judgeflow's Prometheus templates (``judgeflow.prompts.render_requests``) in the
  Mistral conversation format (``mistral_chat``), one string per request, as prometheus-eval's
  vLLM backend sends them.
* Sampling: the spec's ``sampling`` (official defaults temperature 1.0, top_p 0.9,
  max_tokens 1024, repetition_penalty 1.03) as one ``vllm.SamplingParams``.
* Throughput: the WHOLE chunk goes to ``llm.generate(prompts, params)`` in one call, so vLLM's
  scheduler batches it continuously; calling it per item would leave the GPU idle.
* Parse failures: only the items whose reply does not parse are generated again, all of them
  in one call per round, up to ``spec.max_parse_retries`` rounds; what still fails is recorded
  as failed with its last raw output and the parser's reason. Nothing is guessed.

vLLM is imported inside :func:`load_engine` and :func:`sampling_params` only; the engine is
injectable (``engine=``), so tests drive this module with a stand-in that has ``vllm.LLM``'s
``generate`` interface (``tests/stand_ins/vllm_engine.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from judgeflow.judging.records import JudgmentSink, judgment_record
from judgeflow.parsing import ParseError, parse_reply
from judgeflow.prompts import mistral_chat, render_requests
from judgeflow.specs import EngineOptions, JudgeSpec

log = logging.getLogger(__name__)

DEFAULT_MODEL = "prometheus-eval/prometheus-7b-v2.0"
MODEL_8X7B = "prometheus-eval/prometheus-8x7b-v2.0"


class CompletionLike(Protocol):
    text: str
    token_ids: Any


class RequestOutputLike(Protocol):
    prompt_token_ids: Any
    outputs: list[Any]


class EngineLike(Protocol):
    """The part of ``vllm.LLM`` judgeflow uses."""

    def generate(self, prompts: Any, sampling_params: Any = None, use_tqdm: bool = True) -> list[Any]: ...


# How to start ``vllm.LLM``: the judge spec's ``engine`` (``judgeflow.specs.EngineOptions``), with
# the flow's ``engine`` parameter on top. One model, so a config and a factory see the same fields.
EngineSettings = EngineOptions


@dataclass(frozen=True)
class FallbackSamplingParams:
    """``vllm.SamplingParams``' fields, used only when vLLM is absent and an engine is injected."""

    temperature: float
    top_p: float
    max_tokens: int
    repetition_penalty: float
    seed: int | None = None
    n: int = 1


def load_engine(model: str = DEFAULT_MODEL, settings: EngineSettings | None = None) -> Any:
    """Start ``vllm.LLM`` for ``model`` (hub id or local directory). Takes minutes: once per task."""
    from vllm import LLM

    s = settings or EngineSettings()
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": s.tensor_parallel_size,
        "dtype": s.dtype,
        "gpu_memory_utilization": s.gpu_memory_utilization,
        "seed": s.seed,
    }
    optional = {"max_model_len": s.max_model_len, "download_dir": s.download_dir,
                "kv_cache_memory_bytes": s.kv_cache_memory_bytes}
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    if s.enforce_eager:
        kwargs["enforce_eager"] = True
    kwargs.update(s.extra)
    log.info("starting vLLM for %s (tensor_parallel_size=%d)", model, s.tensor_parallel_size)
    return LLM(**kwargs)


def sampling_params(spec: JudgeSpec) -> Any:
    """The spec's sampling settings as ``vllm.SamplingParams``: the four official knobs, and the
    seed when the spec sets one (what prometheus-eval's ``VLLM`` passes when given ``seed``)."""
    s = spec.sampling
    fields: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "repetition_penalty": s.repetition_penalty,
    }
    if s.seed is not None:  # per request: a re-asked or re-run item gets the same reply
        fields["seed"] = s.seed
    try:
        from vllm import SamplingParams
    except ImportError:
        return FallbackSamplingParams(**fields)
    return SamplingParams(n=1, **fields)


def build_prompts(spec: JudgeSpec, rows: pl.DataFrame, requests: pl.DataFrame) -> tuple[list[str], str | None]:
    """(Mistral-format prompt per request in the requests' order, template hash)."""
    rendered = render_requests(spec, rows, requests)
    prompts = [mistral_chat(p.system, p.user) for p in rendered]
    return prompts, (rendered[0].template_hash if rendered else None)


def _prompt_limit(engine: Any, max_tokens: int) -> tuple[Any, int] | None:
    """(tokenizer, longest prompt that leaves room for the reply), when the engine tells.

    vLLM rejects a whole ``generate`` call when one prompt exceeds ``max_model_len``: such items
    are failed up front instead, so one oversized row cannot sink its chunk.
    """
    try:
        max_len = int(engine.llm_engine.model_config.max_model_len)
        tokenizer = engine.get_tokenizer()
    except (AttributeError, TypeError, ValueError):
        return None
    return tokenizer, max_len - max_tokens


def judge_prometheus_vllm(
    spec: JudgeSpec,
    rows: pl.DataFrame,
    requests: pl.DataFrame,
    sink: JudgmentSink,
    *,
    engine: EngineLike,
    params: Any = None,
    use_tqdm: bool = False,
) -> dict[str, Any]:
    """Grade every request of ``requests`` with ``engine``; one judgment per request to ``sink``.

    Returns a summary (counts, rounds, generate calls, seconds) for the task's artifact.
    """
    started = time.perf_counter()
    n = requests.height
    if n == 0:
        return {"judge": spec.name, "requests": 0, "ok": 0, "failed": 0, "rounds": 0, "generate_calls": 0, "seconds": 0.0}
    prompts, template_hash = build_prompts(spec, rows, requests)
    params = params if params is not None else sampling_params(spec)
    spec_hash = spec.spec_hash()
    request_dicts = requests.select(
        "request_id", "row_id", "content_hash", "candidate_a", "candidate_b", "order"
    ).to_dicts()

    attempts = [0] * n
    in_tokens = [0] * n
    out_tokens = [0] * n
    last_raw: list[str | None] = [None] * n
    last_error: list[str] = [""] * n
    records: list[dict[str, Any] | None] = [None] * n

    pending = list(range(n))
    limit = _prompt_limit(engine, spec.sampling.max_tokens)
    if limit is not None:
        tokenizer, longest = limit
        keep = []
        for i in pending:
            size = len(tokenizer.encode(prompts[i]))
            if size > longest:
                in_tokens[i] = size
                records[i] = judgment_record(
                    spec, request_dicts[i], error=f"prompt too long: {size} tokens > {longest} "
                    f"(max_model_len minus max_tokens)", attempts=0, input_tokens=size,
                    template_hash=template_hash, spec_hash=spec_hash, status="failed",  # final
                )
            else:
                keep.append(i)
        pending = keep

    rounds = 0
    calls = 0
    while pending and rounds <= spec.max_parse_retries:
        outputs = engine.generate([prompts[i] for i in pending], params, use_tqdm=use_tqdm)
        calls += 1
        if len(outputs) != len(pending):
            raise RuntimeError(f"engine returned {len(outputs)} outputs for {len(pending)} prompts")
        retry: list[int] = []
        for i, output in zip(pending, outputs, strict=True):
            completion = output.outputs[0]
            text = completion.text
            attempts[i] += 1
            in_tokens[i] += len(output.prompt_token_ids or ())
            out_tokens[i] += len(completion.token_ids or ())
            try:
                parsed = parse_reply(spec, text)
            except ParseError as exc:
                last_raw[i], last_error[i] = text, exc.reason
                retry.append(i)
                continue
            records[i] = judgment_record(
                spec, request_dicts[i], score=parsed.score, verdict=parsed.verdict,
                feedback=parsed.feedback, raw_output=text, attempts=attempts[i],
                input_tokens=in_tokens[i], output_tokens=out_tokens[i],
                template_hash=template_hash, spec_hash=spec_hash,
            )
        if retry:
            log.info("%s: %d of %d replies unparseable, round %d", spec.name, len(retry), len(pending), rounds + 1)
        pending = retry
        rounds += 1

    for i in pending:  # still unparseable after every round: failed, raw output kept
        records[i] = judgment_record(
            spec, request_dicts[i], raw_output=last_raw[i],
            error=f"unparseable after {attempts[i]} attempts: {last_error[i]}",
            attempts=attempts[i], input_tokens=in_tokens[i], output_tokens=out_tokens[i],
            template_hash=template_hash, spec_hash=spec_hash, status="failed",  # the judge's own: final
        )
    failed = 0
    for record in records:
        assert record is not None  # every request got exactly one record above
        failed += record["status"] != "ok"
        sink.add(record)
    seconds = time.perf_counter() - started
    return {
        "judge": spec.name, "requests": n, "ok": n - failed, "failed": failed, "rounds": rounds,
        "generate_calls": calls, "input_tokens": sum(in_tokens), "output_tokens": sum(out_tokens),
        "seconds": round(seconds, 3),
    }
