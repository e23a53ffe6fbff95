"""Turn a judge spec plus one item (instruction, candidates, reference) into chat messages.

Every judge path (live API, Batch API, vLLM) renders through here, so a prompt is the same
bytes whichever path sends it. Templates are compiled once per spec (``compile_spec`` is
cached on the fields that shape the prompt), after which rendering one item is a single
``str.format`` (or one Jinja2 render for custom templates): tens of microseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import polars as pl
from judgeflow.prompts import pairwise, prometheus
from judgeflow.prompts.rubrics import load_rubric
from judgeflow.specs import JudgeSpec

TEMPLATES = ("prometheus", "pairwise-json", "custom")


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """The messages for one judge request. ``system`` None means no system message."""

    system: str | None
    user: str
    template_hash: str

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style chat messages (system first when there is one)."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        out.append({"role": "user", "content": self.user})
        return out


# A formatter takes (instruction, response_a, response_b, reference-or-None) and returns the
# user message. Reference is None when the template without a reference must be used.
_Formatter = Callable[[str, str, "str | None", "str | None"], str]


@dataclass(frozen=True, slots=True)
class CompiledPrompt:
    """A spec's templates, resolved once: rubric text, system prompt and formatter."""

    grading_format: str  # "absolute" | "relative"
    system: str | None
    template_hash: str
    use_reference: bool
    formatter: _Formatter

    def render(
        self,
        instruction: str,
        response_a: str,
        response_b: str | None = None,
        reference: str | None = None,
    ) -> RenderedPrompt:
        """Render one item; the reference is used when the spec allows it and it is non-blank."""
        if self.grading_format == "relative" and response_b is None:
            raise ValueError("a pairwise judge needs response_b")
        ref = reference if self.use_reference and reference and reference.strip() else None
        user = self.formatter(instruction, response_a, response_b, ref)
        return RenderedPrompt(self.system, user, self.template_hash)


def _grading_format(spec: JudgeSpec) -> str:
    return "absolute" if spec.kind == "absolute" else "relative"


def _system(spec: JudgeSpec, default: str | None) -> str | None:
    if spec.system_prompt is None:
        return default
    return spec.system_prompt or None


def _hash(parts: list[str | None]) -> str:
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16]


def _compile_prometheus(spec: JudgeSpec, fmt: str) -> CompiledPrompt:
    rubric = load_rubric(spec.rubric, fmt)
    with_ref = prometheus.get_template(spec.variant, fmt, True).format
    without_ref = prometheus.get_template(spec.variant, fmt, False).format
    system = _system(spec, prometheus.system_prompt(fmt))
    formatter: _Formatter
    if fmt == "absolute":

        def formatter(instruction: str, a: str, b: str | None, ref: str | None) -> str:
            if ref is None:
                return without_ref(instruction=instruction, response=a, rubric=rubric)
            return with_ref(instruction=instruction, response=a, rubric=rubric, reference_answer=ref)

    else:

        def formatter(instruction: str, a: str, b: str | None, ref: str | None) -> str:
            if ref is None:
                return without_ref(instruction=instruction, response_A=a, response_B=b, rubric=rubric)
            return with_ref(
                instruction=instruction, response_A=a, response_B=b, rubric=rubric, reference_answer=ref
            )

    texts = [
        "prometheus", spec.variant, fmt,
        prometheus.get_template(spec.variant, fmt, True),
        prometheus.get_template(spec.variant, fmt, False),
        system, rubric,
    ]
    return CompiledPrompt(fmt, system, _hash(texts), spec.use_reference, formatter)


def _compile_pairwise(spec: JudgeSpec, fmt: str) -> CompiledPrompt:
    if fmt != "relative":
        raise ValueError(
            f"judge {spec.name!r}: template 'pairwise-json' compares two responses; "
            "use kind 'pairwise' or 'relative'"
        )
    criteria = pairwise.criteria_line(load_rubric(spec.rubric, "relative"))
    with_ref = pairwise.PAIRWISE_PROMPT_WITH_REFERENCE.format
    without_ref = pairwise.PAIRWISE_PROMPT.format

    safe = pairwise.neutralize_delimiters

    def formatter(instruction: str, a: str, b: str | None, ref: str | None) -> str:
        instruction, a, b = safe(instruction), safe(a), safe(b or "")
        if ref is None:
            return without_ref(criteria=criteria, instruction=instruction, response_a=a, response_b=b)
        return with_ref(criteria=criteria, instruction=instruction, response_a=a, response_b=b, reference=safe(ref))

    system = _system(spec, pairwise.PAIRWISE_SYSTEM_PROMPT)
    texts = [
        "pairwise-json", fmt, pairwise.PAIRWISE_PROMPT, pairwise.PAIRWISE_PROMPT_WITH_REFERENCE,
        system, criteria,
    ]
    return CompiledPrompt(fmt, system, _hash(texts), spec.use_reference, formatter)


@lru_cache(maxsize=1)
def _jinja() -> Any:
    """The environment custom templates compile in, built on first use (only ``custom`` judges
    need jinja2). Sandboxed and immutable: a config file's template may not touch Python
    internals or mutate its inputs. StrictUndefined: a misspelt variable is an error, not a
    silently empty string."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def _compile_custom(spec: JudgeSpec, fmt: str) -> CompiledPrompt:
    from jinja2 import TemplateError

    source = spec.custom_template or ""
    try:
        template = _jinja().from_string(source)
    except TemplateError as exc:
        raise ValueError(f"judge {spec.name!r}: custom_template does not compile: {exc}") from exc
    rubric = load_rubric(spec.rubric, fmt)
    name = spec.name

    def formatter(instruction: str, a: str, b: str | None, ref: str | None) -> str:
        try:
            return template.render(
                instruction=instruction, response=a, response_a=a, response_b=b,
                reference=ref, rubric=rubric,
            )
        except TemplateError as exc:
            raise ValueError(f"judge {name!r}: custom_template failed to render: {exc}") from exc

    system = _system(spec, None)
    return CompiledPrompt(fmt, system, _hash(["custom", fmt, source, system, rubric]), spec.use_reference, formatter)


@lru_cache(maxsize=256)
def _compile(
    name: str, kind: str, template: str, custom_template: str | None, system_prompt: str | None,
    rubric: str, variant: str, use_reference: bool,
) -> CompiledPrompt:
    spec = JudgeSpec.model_construct(
        name=name, kind=kind, template=template, custom_template=custom_template,
        system_prompt=system_prompt, rubric=rubric, variant=variant, use_reference=use_reference,
    )
    fmt = _grading_format(spec)
    if template == "prometheus":
        return _compile_prometheus(spec, fmt)
    if template == "pairwise-json":
        return _compile_pairwise(spec, fmt)
    if template == "custom":
        return _compile_custom(spec, fmt)
    raise ValueError(f"judge {name!r}: unknown template {template!r}; known: {', '.join(TEMPLATES)}")


def compile_spec(spec: JudgeSpec) -> CompiledPrompt:
    """The spec's compiled templates (cached on the fields that shape the prompt)."""
    return _compile(
        spec.name, spec.kind, spec.template, spec.custom_template, spec.system_prompt,
        spec.rubric, spec.variant, spec.use_reference,
    )


def template_hash(spec: JudgeSpec) -> str:
    """Provenance hash of every template text, system prompt and rubric text the spec uses.

    Equal to ``RenderedPrompt.template_hash`` of any prompt the spec renders; whether a row's
    reference was used is captured by the row's content hash.
    """
    return compile_spec(spec).template_hash


def render(
    spec: JudgeSpec,
    *,
    instruction: str,
    response_a: str,
    response_b: str | None = None,
    reference: str | None = None,
) -> RenderedPrompt:
    """Render one item. Absolute judges grade ``response_a``; pairwise judges need both."""
    return compile_spec(spec).render(instruction, response_a, response_b, reference)


def render_requests(spec: JudgeSpec, rows: pl.DataFrame, requests: pl.DataFrame) -> list[RenderedPrompt]:
    """Prompts for every request of ``expand_requests(rows, spec)``, in the requests' order.

    The candidates are picked by index with polars (one join, two ``list.get``); only the final
    string formatting runs per item.
    """
    compiled = compile_spec(spec)
    if requests.height == 0:
        return []
    reference = pl.col("reference") if "reference" in rows.columns else pl.lit(None, dtype=pl.String)
    source = rows.select(
        "row_id", "instruction", "responses", reference.alias("reference"), pl.lit(True).alias("_found")
    )
    joined = requests.select("row_id", "candidate_a", "candidate_b").join(
        source, on="row_id", how="left", maintain_order="left"
    )
    items = joined.select(
        "row_id",
        "_found",
        "candidate_a",
        "candidate_b",
        "instruction",
        pl.col("responses").list.get(pl.col("candidate_a"), null_on_oob=True).alias("a"),
        pl.col("responses").list.get(pl.col("candidate_b"), null_on_oob=True).alias("b"),
        "reference",
    )
    _check_items(items, compiled.grading_format)
    render_one = compiled.render
    return [
        render_one(i, a, b, r)
        for i, a, b, r in zip(
            items["instruction"].to_list(), items["a"].to_list(), items["b"].to_list(),
            items["reference"].to_list(), strict=True,
        )
    ]


def _check_items(items: pl.DataFrame, grading_format: str) -> None:
    """Fail loudly on requests that point at missing rows or candidates, never render 'None'."""
    missing = items.filter(pl.col("_found").is_null())
    if missing.height:
        ids = missing["row_id"].unique().head(5).to_list()
        raise ValueError(f"{missing.height} request(s) refer to rows not given, e.g. {ids}")
    bad = pl.col("a").is_null()
    if grading_format == "relative":
        bad = bad | pl.col("b").is_null()
    broken = items.filter(bad)
    if broken.height:
        first = broken.row(0, named=True)
        raise ValueError(
            f"{broken.height} request(s) point at missing candidates, e.g. row {first['row_id']!r} "
            f"candidates ({first['candidate_a']}, {first['candidate_b']})"
        )
