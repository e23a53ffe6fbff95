"""Prometheus 2 prompt templates, byte for byte as the model was trained and released.

Two variants exist in the wild and both are kept verbatim:

* ``library`` (the default): the templates shipped in ``prometheus_eval/prompts.py`` of
  prometheus-eval 0.1.20, whose output-format line reads ``"(write a feedback for criteria)
  [RESULT] ..."``;
* ``paper``: the templates of the training data and the paper's benchmark files
  (``eval/benchmark/data/`` of the same repository), identical except that the output-format
  line reads ``"Feedback: (write a feedback for criteria) [RESULT] ..."``.

Why keep them as literal constants rather than build them: the model is sensitive to the exact
bytes it was trained on, and ``tests/test_prompts.py`` compares renderings with golden files
produced by prometheus-eval itself, so any drift is caught.
"""

from __future__ import annotations

from typing import Literal

Variant = Literal["library", "paper"]

ABS_SYSTEM_PROMPT = "You are a fair judge assistant tasked with providing clear, objective feedback based on specific criteria, ensuring each assessment reflects the absolute standards set for performance."
REL_SYSTEM_PROMPT = "You are a fair judge assistant assigned to deliver insightful feedback that compares individual performances, highlighting how each stands relative to others within the same cohort."


ABSOLUTE_PROMPT = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, a reference answer that gets a score of 5, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of the response strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"
4. Please do not generate any other opening, closing, and explanations.

###The instruction to evaluate:
{instruction}

###Response to evaluate:
{response}

###Reference Answer (Score 5):
{reference_answer}

###Score Rubrics:
{rubric}

###Feedback: """


ABSOLUTE_PROMPT_WO_REF = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of the response strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"
4. Please do not generate any other opening, closing, and explanations.

###The instruction to evaluate:
{instruction}

###Response to evaluate:
{response}

###Score Rubrics:
{rubric}

###Feedback: """


RELATIVE_PROMPT = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, a reference answer, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of two responses strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, choose a better response between Response A and Response B. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (A or B)"
4. Please do not generate any other opening, closing, and explanations.

###Instruction:
{instruction}

###Response A:
{response_A}

###Response B:
{response_B}

###Reference Answer:
{reference_answer}

###Score Rubric:
{rubric}

###Feedback: """


RELATIVE_PROMPT_WO_REF = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of two responses strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, choose a better response between Response A and Response B. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (A or B)"
4. Please do not generate any other opening, closing, and explanations.

###Instruction:
{instruction}

###Response A:
{response_A}

###Response B:
{response_B}

###Score Rubric:
{rubric}

###Feedback: """


SCORE_RUBRIC_TEMPLATE = """
[{criteria}]
Score 1: {score1_description}
Score 2: {score2_description}
Score 3: {score3_description}
Score 4: {score4_description}
Score 5: {score5_description}
""".strip()


# The paper / training-data variant differs in exactly one place: the output-format line asks
# for a "Feedback: " label. Derived by replacement so the rest stays byte-identical; the
# golden test checks the result against a prompt copied from the paper's benchmark data.
_LIBRARY_FORMAT = '"(write a feedback for criteria) [RESULT]'
_PAPER_FORMAT = '"Feedback: (write a feedback for criteria) [RESULT]'


def _paper(template: str) -> str:
    assert template.count(_LIBRARY_FORMAT) == 1
    return template.replace(_LIBRARY_FORMAT, _PAPER_FORMAT)


PAPER_ABSOLUTE_PROMPT = _paper(ABSOLUTE_PROMPT)
PAPER_ABSOLUTE_PROMPT_WO_REF = _paper(ABSOLUTE_PROMPT_WO_REF)
PAPER_RELATIVE_PROMPT = _paper(RELATIVE_PROMPT)
PAPER_RELATIVE_PROMPT_WO_REF = _paper(RELATIVE_PROMPT_WO_REF)

_TEMPLATES: dict[tuple[Variant, str, bool], str] = {
    ("library", "absolute", True): ABSOLUTE_PROMPT,
    ("library", "absolute", False): ABSOLUTE_PROMPT_WO_REF,
    ("library", "relative", True): RELATIVE_PROMPT,
    ("library", "relative", False): RELATIVE_PROMPT_WO_REF,
    ("paper", "absolute", True): PAPER_ABSOLUTE_PROMPT,
    ("paper", "absolute", False): PAPER_ABSOLUTE_PROMPT_WO_REF,
    ("paper", "relative", True): PAPER_RELATIVE_PROMPT,
    ("paper", "relative", False): PAPER_RELATIVE_PROMPT_WO_REF,
}


def get_template(variant: Variant, grading_format: str, include_reference: bool) -> str:
    """The template text for a variant, ``absolute``/``relative`` grading and reference use."""
    try:
        return _TEMPLATES[(variant, grading_format, include_reference)]
    except KeyError:
        raise ValueError(
            f"no Prometheus template for variant={variant!r}, format={grading_format!r}; "
            "variants: library, paper; formats: absolute, relative"
        ) from None


def system_prompt(grading_format: str) -> str:
    """The official system prompt for ``absolute`` or ``relative`` grading."""
    return ABS_SYSTEM_PROMPT if grading_format == "absolute" else REL_SYSTEM_PROMPT
