"""The Mistral conversation format Prometheus 2 was trained with, for raw-prompt backends.

prometheus-eval sends vLLM a single string built by FastChat's ``mistral`` conversation
template (``system_template="[INST] {system_message}\\n"``, roles ``[INST]``/``[/INST]``,
separator style LLAMA2) and strips it (``VLLM.completions`` calls ``prompt.strip()``). The
result is ``"[INST] {system}\\n{user} [/INST]"``; without a system message ``"[INST] {user}
[/INST]"``. No ``<s>``: the tokenizer adds the BOS token itself. Reproduced here so the GPU
judge does not need FastChat, and pinned by golden files rendered with FastChat itself.
"""

from __future__ import annotations


def mistral_chat(system: str | None, user: str) -> str:
    """The exact prompt string prometheus-eval hands to ``vllm.LLM.generate``."""
    text = f"[INST] {system}\n" if system else "[INST] "
    # FastChat's LLAMA2 style: a non-empty first message is followed by a space; an empty one
    # is replaced by its role tag. The assistant turn is open, so only its tag is appended.
    text += f"{user} " if user else "[INST]"
    text += "[/INST]"
    return text.strip()
