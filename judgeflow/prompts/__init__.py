"""Judge prompts: Prometheus 2 templates and rubrics, the pairwise-JSON prompt, custom Jinja2
templates, the Mistral chat format, and the renderer every judge path shares."""

from __future__ import annotations

from judgeflow.prompts.chat import mistral_chat
from judgeflow.prompts.pairwise import PAIRWISE_JSON_SCHEMA, RESPONSE_FORMAT
from judgeflow.prompts.render import (
    CompiledPrompt,
    RenderedPrompt,
    compile_spec,
    render,
    render_requests,
    template_hash,
)
from judgeflow.prompts.rubrics import load_rubric, rubric_names, rubric_text

__all__ = [
    "PAIRWISE_JSON_SCHEMA",
    "RESPONSE_FORMAT",
    "CompiledPrompt",
    "RenderedPrompt",
    "compile_spec",
    "load_rubric",
    "mistral_chat",
    "render",
    "render_requests",
    "rubric_names",
    "rubric_text",
    "template_hash",
]
