"""Randomly initialised PairRM checkpoints, for tests, smoke runs and benchmarks without weights.

A checkpoint is written in the layout ``Blender.loadranker`` reads from a local directory, so
loading it exercises the same code path as ``llm-blender/PairRM``:

* ``config.json``: llm-blender's ``RankerConfig`` (``ranker_type`` "pairranker",
  ``model_type`` "deberta", ``model_name`` = the backbone);
* ``pytorch_model.bin``: the state dict of llm-blender's ``CrossCompareReranker``;
* ``backbone/``: a DeBERTa-v2/v3 backbone (``config.json``, weights, tokenizer). The real
  PairRM names ``microsoft/deberta-v3-large`` here and fetches it from the hub; a relative
  ``model_name`` is resolved against the checkpoint directory by ``judgeflow.gpu.pairrm``,
  which makes a checkpoint self-contained for offline GPU nodes.

The tokenizer is a small Unigram model trained with ``tokenizers`` on a few sentences and
wrapped as ``DebertaV2TokenizerFast`` (DeBERTa-v3's own tokenizer class), so no download is
needed. Weights are random: verdicts are valid A/B labels, not meaningful preferences.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: DeBERTa-v3-large, PairRM's backbone (~435M parameters with its 128k vocabulary).
DEBERTA_V3_LARGE: dict[str, Any] = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "vocab_size": 128100,
}

#: DeBERTa-v3-base: a third of large's non-embedding parameters, for CPU throughput runs where
#: large would take hours on a few cores.
DEBERTA_V3_BASE: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "vocab_size": 128100,
}

#: A backbone small enough for unit tests on 2 CPU cores (well under a second per batch).
TINY: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": None,  # None: the trained tokenizer's size
}

_CORPUS: tuple[str, ...] = (
    "Explain photosynthesis in two sentences.",
    "Plants turn light, water and carbon dioxide into sugar and oxygen.",
    "Write a haiku about the sea. Waves fold into foam, the tide forgets every name.",
    "What is the capital of France? Paris is the capital of France.",
    "The quick brown fox jumps over the lazy dog while the cat sleeps.",
    "Give three tips for staying healthy: sleep well, eat vegetables and exercise.",
    "Summarise the following text in one line and keep the numbers 1, 2, 3, 42 and 1000.",
    "I am sorry, I cannot help with that request. Here is a better answer instead.",
)


@dataclass(frozen=True)
class RandomPairRMSpec:
    """Sizes of a random PairRM; ``vocab_size`` None uses the trained tokenizer's size."""

    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 64
    vocab_size: int | None = None
    tokenizer_vocab: int = 400
    source_maxlength: int = 1224
    candidate_maxlength: int = 412
    # 0.2 rather than DeBERTa's 0.02: with the small init, a random model's hidden states barely
    # depend on the candidate text and every logit is ~1e-6, which says nothing in a test.
    initializer_range: float = 0.2
    seed: int = 0

    @classmethod
    def deberta_v3_large(cls, **overrides: Any) -> RandomPairRMSpec:
        """PairRM's real dimensions (random weights)."""
        return cls(**{**DEBERTA_V3_LARGE, **overrides})

    @classmethod
    def deberta_v3_base(cls, **overrides: Any) -> RandomPairRMSpec:
        """DeBERTa-v3-base dimensions (random weights)."""
        return cls(**{**DEBERTA_V3_BASE, **overrides})


def build_tokenizer(vocab: int = 400, corpus: tuple[str, ...] = _CORPUS) -> Any:
    """A DeBERTa-v3-style tokenizer (Metaspace + Unigram, [CLS]/[SEP]) trained locally."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import DebertaV2TokenizerFast

    special = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab, special_tokens=special, unk_token="[UNK]")
    tok.train_from_iterator(list(corpus) * 4, trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return DebertaV2TokenizerFast(
        tokenizer_object=tok, bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]",
        sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
    )


def backbone_config(spec: RandomPairRMSpec, vocab_size: int) -> Any:
    """A DeBERTa-v3 configuration (relative attention, p2c/c2p, shared keys) of ``spec``'s size."""
    from transformers import DebertaV2Config

    return DebertaV2Config(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        hidden_act="gelu",
        max_position_embeddings=512,
        type_vocab_size=0,
        relative_attention=True,
        position_buckets=256,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        max_relative_positions=-1,
        layer_norm_eps=1e-7,
        pad_token_id=0,
        initializer_range=spec.initializer_range,
    )


def ranker_config_dict(spec: RandomPairRMSpec, model_name: str) -> dict[str, Any]:
    """The ``config.json`` llm-blender's ``RankerConfig`` reads (the fields PairRM ships)."""
    return {
        "ranker_type": "pairranker",
        "model_type": "deberta",
        "model_name": model_name,
        "cache_dir": None,
        "load_checkpoint": None,
        "source_maxlength": spec.source_maxlength,
        "candidate_maxlength": spec.candidate_maxlength,
        "n_tasks": 1,
        "num_pos": 5,
        "num_neg": 5,
        "sub_sampling_mode": "all_pair",
        "sub_sampling_ratio": 0.4,
        "loss_type": "instructgpt",
        "reduce_type": "linear",
        "inference_mode": "bubble",
        "drop_out": 0.05,
        "fp16": True,
        "device": None,
    }


def build_in_memory(spec: RandomPairRMSpec) -> tuple[Any, Any, Any, Any]:
    """(ranker, tokenizer, collator, RankerConfig) built by llm-blender's own classes, no disk.

    Mirrors ``llm_blender.blender.blender_utils.load_ranker``: the collator adds PairRM's
    prefix tokens to the tokenizer, then the backbone's embeddings are resized to fit them.
    """
    import torch
    from llm_blender.pair_ranker.config import RankerConfig
    from llm_blender.pair_ranker.model_util import build_collator
    from llm_blender.pair_ranker.ranker import CrossCompareReranker
    from transformers import DebertaV2Model

    torch.manual_seed(spec.seed)
    tokenizer = build_tokenizer(spec.tokenizer_vocab)
    config = RankerConfig.from_dict(ranker_config_dict(spec, "in-memory"))
    collator = build_collator("pairranker", tokenizer, spec.source_maxlength, spec.candidate_maxlength)
    backbone = DebertaV2Model(backbone_config(spec, spec.vocab_size or len(tokenizer)))
    backbone.config.out_hidden_state_size = backbone.config.hidden_size
    backbone.resize_token_embeddings(len(tokenizer))  # as llm-blender's build_ranker does
    ranker = CrossCompareReranker(backbone, config, tokenizer).eval()
    return ranker, tokenizer, collator, config


def save_checkpoint(directory: str | Path, spec: RandomPairRMSpec | None = None) -> Path:
    """Write a random PairRM checkpoint to ``directory`` (layout in the module docstring)."""
    import torch
    from llm_blender.blender.blender_utils import load_ranker
    from llm_blender.pair_ranker.config import RankerConfig
    from transformers import DebertaV2Model

    spec = spec or RandomPairRMSpec()
    root = Path(directory)
    backbone_dir = root / "backbone"
    backbone_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec.seed)
    tokenizer = build_tokenizer(spec.tokenizer_vocab)
    DebertaV2Model(backbone_config(spec, spec.vocab_size or len(tokenizer))).save_pretrained(backbone_dir)
    tokenizer.save_pretrained(backbone_dir)
    # llm-blender's loader builds the reranker around the backbone (random head, resized
    # embeddings); its state dict is what PairRM ships as pytorch_model.bin.
    config = RankerConfig.from_dict(ranker_config_dict(spec, str(backbone_dir)))
    torch.manual_seed(spec.seed + 1)
    ranker, _, _ = load_ranker(config)
    torch.save(ranker.state_dict(), root / "pytorch_model.bin")
    (root / "config.json").write_text(json.dumps(ranker_config_dict(spec, "backbone"), indent=2))
    (root / "judgeflow-random.json").write_text(json.dumps(asdict(spec), indent=2))
    return root
