"""Regenerate the Prometheus golden files with prometheus-eval itself (NOT judgeflow).

Run with a throwaway interpreter that has prometheus-eval 0.1.20 and FastChat (the ``fastchat``
0.1.0 wheel prometheus-eval depends on), never the project venv:

    python3 -m venv /tmp/pe
    pip download --no-deps prometheus-eval==0.1.20 'fastchat>=0.1.0,<0.2.0' -d /tmp/pe_dl
    /tmp/pe/bin/pip install --no-deps /tmp/pe_dl/*.whl && /tmp/pe/bin/pip install tqdm
    /tmp/pe/bin/python tests/golden/make_golden.py

For each case in ``cases.json`` it writes ``<name>.user.txt`` (the user message),
``<name>.system.txt`` and ``<name>.mistral.txt`` (the string prometheus-eval hands to vLLM:
``PrometheusEval._get_conversation_prompt(messages).strip()``).

The ``paper`` variant has no template in the library: it is the library template with the
output-format line changed to ``"Feedback: (write a feedback for criteria) [RESULT] ..."``.
That one change is checked independently by ``benchmark_*.txt``, prompts copied verbatim from
the paper's benchmark data (``eval/benchmark/data/`` of prometheus-eval/prometheus-eval).
"""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_eval import judge, prompts

HERE = Path(__file__).parent
LIB = '"(write a feedback for criteria) [RESULT]'
PAPER = '"Feedback: (write a feedback for criteria) [RESULT]'


def rubric_for(case: dict, fmt: str) -> str:
    rubric = case["rubric"]
    if isinstance(rubric, dict):
        text = prompts.SCORE_RUBRIC_TEMPLATE.format(**rubric)
    elif rubric.replace("-", "_") in ("helpfulness", "harmlessness", "honesty", "factual_validity", "reasoning"):
        return prompts.load_rubric(rubric.replace("-", "_"), fmt)
    else:
        text = rubric
    return text if fmt == "absolute" else text.split("\n")[0]


def main() -> None:
    cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
    for case in cases:
        fmt = case["kind"]
        has_ref = case["reference"] is not None
        template = prompts.get_prompt_template(fmt, has_ref)
        if case["variant"] == "paper":
            assert template.count(LIB) == 1
            template = template.replace(LIB, PAPER)
        rubric = rubric_for(case, fmt)
        responses = case["responses"]
        if fmt == "absolute":
            user = template.format(
                instruction=case["instruction"], response=responses[case["a"]],
                rubric=rubric, reference_answer=case["reference"],
            )
            system = prompts.ABS_SYSTEM_PROMPT
        else:
            user = template.format(
                instruction=case["instruction"], response_A=responses[case["a"]],
                response_B=responses[case["b"]], rubric=rubric, reference_answer=case["reference"],
            )
            system = prompts.REL_SYSTEM_PROMPT
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        chat = judge.PrometheusEval._get_conversation_prompt(None, messages).strip()
        for suffix, text in (("user", user), ("system", system), ("mistral", chat)):
            (HERE / f"{case['name']}.{suffix}.txt").write_bytes(text.encode("utf-8"))
    print(f"wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
