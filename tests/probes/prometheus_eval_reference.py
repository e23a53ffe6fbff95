"""prometheus-eval 0.1.20's own constants, prompts and parser, for the comparison tests.

Runs inside the CPU engine environment (where prometheus-eval is installed; it cannot live in
the test environment: its dependencies would pull litellm's pins into it), never imports
judgeflow. Reads one JSON job on stdin, prints one JSON line:

* ``{"job": "constants", "names": [...], "rubrics": [...]}`` -> the named module constants and
  ``load_rubric(name, "absolute" | "relative")`` for each rubric;
* ``{"job": "prompts", "cases": [{"mode", "instruction", "response" | "response_A" + "response_B",
  "reference" | null, "rubric": NAME | {"criteria", "score1_description".."score5_description"}
  | TEXT}]}`` -> the exact
  string ``PrometheusEval`` hands to ``VLLM.completions`` (its Mistral conversation, stripped);
* ``{"job": "parse", "cases": [[output, mode], ...]}`` -> ``parse_output(output, mode)[1]`` each.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _rubric(value: Any, mode: str) -> str:
    from prometheus_eval import prompts as pe

    if isinstance(value, dict):
        text = pe.SCORE_RUBRIC_TEMPLATE.format(**value)  # how prometheus-eval documents custom rubrics
        return text if mode == "absolute" else text.split("\n")[0]
    name = value.lower().replace("-", "_")
    if name in ("helpfulness", "harmlessness", "honesty", "factual_validity", "reasoning"):
        return pe.load_rubric(name, mode)
    return value if mode == "absolute" else value.split("\n")[0]


def _prompt(case: dict[str, Any]) -> str:
    from prometheus_eval import PrometheusEval
    from prometheus_eval import prompts as pe

    mode, reference = case["mode"], case.get("reference")
    template = pe.get_prompt_template(mode, bool(reference))
    fields = {"instruction": case["instruction"], "rubric": _rubric(case["rubric"], mode),
              "reference_answer": reference}
    if mode == "absolute":
        fields["response"] = case["response"]
        system = pe.ABS_SYSTEM_PROMPT
    else:
        fields |= {"response_A": case["response_A"], "response_B": case["response_B"]}
        system = pe.REL_SYSTEM_PROMPT
    messages = [{"role": "system", "content": system}, {"role": "user", "content": template.format(**fields)}]
    # what absolute_grade / relative_grade build for a vLLM model, stripped as VLLM.completions does
    return PrometheusEval._get_conversation_prompt(None, messages).strip()  # type: ignore[arg-type]


def main() -> int:
    job = json.loads(sys.stdin.read())
    if job["job"] == "constants":
        from prometheus_eval import prompts as pe

        out: Any = {
            "constants": {name: getattr(pe, name) for name in job["names"]},
            "rubrics": {name: {mode: pe.load_rubric(name, mode) for mode in ("absolute", "relative")}
                        for name in job["rubrics"]},
        }
    elif job["job"] == "prompts":
        out = [_prompt(case) for case in job["cases"]]
    elif job["job"] == "parse":
        from prometheus_eval.parser import parse_output

        out = [parse_output(output, mode)[1] for output, mode in job["cases"]]
    else:
        raise SystemExit(f"unknown job {job['job']!r}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
