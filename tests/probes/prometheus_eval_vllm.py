"""prometheus-eval 0.1.20 grading with its own ``VLLM`` model: the reference for judgeflow's path.

Runs inside the CPU engine environment (``tests/fixtures/vllm_engine.py``), never imports
judgeflow, and reads one JSON object on stdin::

    {"model": DIR, "llm": {vllm.LLM keywords}, "params": {SamplingParams fields},
     "groups": [{"mode": "absolute"|"relative", "reference": true|false, "rubric": CRITERIA,
                 "items": [{"id", "instruction", "response" | "response_A" + "response_B",
                            "reference_answer"}]}],
     "perturb": true|false}

Each group is graded by ``PrometheusEval(model=VLLM(...), absolute_grade_template=...,
relative_grade_template=...).absolute_grade`` / ``relative_grade`` with the library's own
template for that mode and reference use, its own rubric (``load_rubric``) and its own retry
loop. The texts the engine generated in the first round are recorded by wrapping
``VLLM.completions`` (the library's method still runs). With ``perturb``, the first group is
graded again with one character of its rubric changed, to show that the engine's replies depend
on the prompt (so equal texts mean equal prompts). Prints one JSON line:
``{"items": {id: {"text", "feedback", "score"}}, "perturbed_texts": [...], "calls": n}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> int:
    job = json.loads(sys.stdin.read())
    from prometheus_eval import PrometheusEval
    from prometheus_eval.prompts import get_prompt_template, load_rubric
    from prometheus_eval.vllm import VLLM

    class RecordingVLLM(VLLM):
        """prometheus-eval's VLLM; every call's outputs are kept for the comparison."""

        calls: list[list[str]] = []

        def completions(self, prompts: Any, use_tqdm: bool = True, **kwargs: Any) -> list[str]:
            outputs = super().completions(prompts, use_tqdm=False, **kwargs)
            self.calls.append(list(outputs))
            return outputs

    model = RecordingVLLM(job["model"], **job["llm"])
    results: dict[str, dict[str, Any]] = {}

    def grade(group: dict[str, Any], rubric: str) -> tuple[list[str], list[Any], list[str]]:
        template = get_prompt_template(group["mode"], group["reference"])
        judge = PrometheusEval(model=model, absolute_grade_template=template, relative_grade_template=template)
        items = group["items"]
        references = [i.get("reference_answer") for i in items] if group["reference"] else None
        before = len(model.calls)
        if group["mode"] == "absolute":
            feedbacks, scores = judge.absolute_grade(
                instructions=[i["instruction"] for i in items], responses=[i["response"] for i in items],
                rubric=rubric, reference_answers=references, params=job["params"],
            )
        else:
            feedbacks, scores = judge.relative_grade(
                instructions=[i["instruction"] for i in items], responses_A=[i["response_A"] for i in items],
                responses_B=[i["response_B"] for i in items], rubric=rubric,
                reference_answers=references, params=job["params"],
            )
        return feedbacks, scores, model.calls[before]  # the first round: one text per item, in order

    for group in job["groups"]:
        rubric = load_rubric(group["rubric"], group["mode"])
        feedbacks, scores, texts = grade(group, rubric)
        for item, feedback, score, text in zip(group["items"], feedbacks, scores, texts, strict=True):
            results[item["id"]] = {"text": text, "feedback": feedback, "score": score}
    perturbed: list[str] = []
    if job.get("perturb") and job["groups"]:
        group = job["groups"][0]
        rubric = load_rubric(group["rubric"], group["mode"]).replace("?", " ?", 1)  # one character more
        perturbed = grade(group, rubric)[2]
    print(json.dumps({"items": results, "perturbed_texts": perturbed, "calls": len(model.calls)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
