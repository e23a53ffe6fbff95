"""PairRM (llm-blender) as a judgeflow judge, with judgeflow's own length-bucketed batching.

Loading goes through llm-blender itself (``Blender().loadranker``), for a hub id and a local
directory alike, so the model, tokenizer and prefix tokens are exactly PairRM's. Scoring does
not use ``Blender.compare``: that runs a DataLoader over pairs in input order, pads every
batch to its longest pair, re-tokenises each candidate once per pair and, by default, runs
both orders of a pair in one call. Here every text is tokenised once (a row's candidates are
shared by all its pairs), pairs are sorted by token length and cut into batches bounded by a
pair count and a padded-token budget, and results stay on the device until the end, so the
GPU never waits for the next batch to be built. On CUDA the model runs in bf16, on CPU in fp32.

The scoring replicates ``CrossCompareReranker._forward`` for encoder-only backbones:
``[CLS] <|source|> source [SEP] [CLS] <|candidate1|> left [SEP] [CLS] <|candidate2|> right
[SEP]``, the last hidden states at the three prefix tokens, ``head(source, left) -
head(source, right)`` = the logit that the left candidate is better. Truncation is
llm-blender's (source to ``source_max_length`` tokens, each candidate to
``candidate_max_length`` plus half of what the source left unused), computed per pair rather
than per DataLoader batch, so a verdict never depends on which pairs share its batch.

Judgments: kind "relative", one per shown order (``expand_requests`` makes AB and BA),
``verdict`` A/B in that order, ``score`` = the logit (>0: A better), ``feedback`` None.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from judgeflow.judging.records import JudgmentSink, judgment_record
from judgeflow.specs import JudgeSpec

log = logging.getLogger(__name__)

DEFAULT_MODEL = "llm-blender/PairRM"


@dataclass(frozen=True)
class PairRMSettings:
    """Batching and truncation. Defaults fit DeBERTa-v3-large pairs of ~2k tokens on an 80 GB GPU."""

    batch_size: int = 32  # pairs per forward pass at most
    max_batch_tokens: int = 65_536  # padded tokens per forward pass at most (pairs x longest)
    source_max_length: int = 1224  # PairRM's training lengths
    candidate_max_length: int = 412


def default_device() -> str:
    """"cuda" when a GPU is visible, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> Any:
    """bf16 on CUDA (where supported), fp32 elsewhere: bf16 on CPU is slower, not faster."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _backbone_override(model: str, backbone: str | None) -> dict[str, str]:
    """``model_name`` to hand ``loadranker``: explicit, or a backbone shipped inside the checkpoint.

    PairRM's ``config.json`` names its backbone (``microsoft/deberta-v3-large``), which
    llm-blender fetches from the hub. A checkpoint directory may instead carry the backbone in a
    sub-folder and name it relatively; resolving it here keeps such a directory self-contained.
    """
    if backbone:
        return {"model_name": backbone}
    root = Path(model)
    config = root / "config.json"
    if root.is_dir() and config.is_file():
        name = json.loads(config.read_text()).get("model_name")
        if name and not Path(name).is_absolute() and (root / name).is_dir():
            return {"model_name": str((root / name).resolve())}
    return {}


class PairRM:
    """A loaded PairRM ranker plus judgeflow's batching. Build with :meth:`load`."""

    def __init__(
        self,
        ranker: Any,
        tokenizer: Any,
        *,
        device: str,
        dtype: Any,
        settings: PairRMSettings | None = None,
        model_name: str = DEFAULT_MODEL,
    ) -> None:
        self.ranker = ranker
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.settings = settings or PairRMSettings()
        self.model_name = model_name
        self.sep_text: str = tokenizer.sep_token
        self.cls_id: int = tokenizer.cls_token_id
        self.sep_id: int = tokenizer.sep_token_id
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # set on the tokenizer by llm-blender's CrossCompareCollator when the ranker is loaded
        self.source_prefix: str = tokenizer.source_prefix
        self.candidate_prefix: str = tokenizer.candidate_prefix
        self.cand_prefix_id: int = tokenizer.cand_prefix_id
        self.cand1_prefix_id: int = tokenizer.cand1_prefix_id
        self.cand2_prefix_id: int = tokenizer.cand2_prefix_id

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        dtype: Any = None,
        backbone: str | None = None,
        cache_dir: str | None = None,
        settings: PairRMSettings | None = None,
    ) -> PairRM:
        """Load through ``Blender().loadranker(model)``: a hub id or a local directory, one path.

        ``backbone`` overrides the DeBERTa backbone named in the checkpoint's config (a local
        copy of ``microsoft/deberta-v3-large`` on an offline node). llm-blender's own fp16 cast
        is switched off; the model is cast to ``dtype`` (default: bf16 on CUDA, fp32 on CPU).
        """
        from llm_blender import Blender
        from llm_blender.blender.config import BlenderConfig

        device = device or default_device()
        dtype = dtype or default_dtype(device)
        kwargs: dict[str, Any] = {"fp16": False, **_backbone_override(model, backbone)}
        if cache_dir:
            kwargs["cache_dir"] = cache_dir
        blender = Blender(BlenderConfig(device=device, use_tqdm=False))
        with contextlib.redirect_stdout(io.StringIO()):  # loadranker print()s its path
            blender.loadranker(model, device=device, **kwargs)
        ranker = blender.ranker.to(device=device, dtype=dtype).eval()
        log.info("PairRM %s loaded on %s (%s)", model, device, dtype)
        return cls(
            ranker, blender.ranker_tokenizer, device=device, dtype=dtype, settings=settings,
            model_name=model,
        )

    # -- tokenisation ------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str], prefix: str) -> list[list[int]]:
        """Token ids of ``prefix + text`` without special tokens, untruncated (one Rust call)."""
        clean = [prefix + t.replace(self.sep_text, " ") for t in texts]
        return self.tokenizer(clean, add_special_tokens=False)["input_ids"]

    def _wrap(self, ids: list[int], max_length: int) -> list[int]:
        """llm-blender's truncation: the first ``max_length - 2`` ids between [CLS] and [SEP]."""
        return [self.cls_id, *ids[: max(max_length - 2, 0)], self.sep_id]

    # -- scoring -----------------------------------------------------------------------------

    def score_pairs(
        self, sources: Sequence[str], lefts: Sequence[str], rights: Sequence[str]
    ) -> np.ndarray:
        """Logit that ``lefts[i]`` beats ``rights[i]`` for ``sources[i]``, in input order."""
        return self.score_pairs_with_tokens(sources, lefts, rights)[0]

    def score_pairs_with_tokens(
        self, sources: Sequence[str], lefts: Sequence[str], rights: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(logits, tokens per pair after truncation). Repeated texts are tokenised once."""
        if not (len(sources) == len(lefts) == len(rights)):
            raise ValueError("sources, lefts and rights must have the same length")
        n = len(sources)
        if n == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        src_keys, src_index = np.unique(np.asarray(sources, dtype=object), return_inverse=True)
        cand_keys, cand_index = np.unique(
            np.asarray([*lefts, *rights], dtype=object), return_inverse=True
        )
        src_ids = [
            self._wrap(ids, self.settings.source_max_length)
            for ids in self._encode(list(src_keys), self.source_prefix)
        ]
        cand_raw = self._encode(list(cand_keys), self.candidate_prefix)
        left_idx, right_idx = cand_index[:n], cand_index[n:]
        cand_max = self.settings.candidate_max_length
        budget = [cand_max + (self.settings.source_max_length - len(src_ids[s])) // 2 for s in src_index]
        pairs = [
            (src_ids[s], self._wrap(cand_raw[a], b), self._wrap(cand_raw[c], b))
            for s, a, c, b in zip(src_index, left_idx, right_idx, budget, strict=True)
        ]
        lengths = np.fromiter((len(s) + len(a) + len(b) for s, a, b in pairs), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: an OOM shows at once
        out = np.empty(n, dtype=np.float32)
        pending: list[tuple[np.ndarray, Any]] = []
        for batch in self._batches(order, lengths):
            pending.append((batch, self._forward([pairs[i] for i in batch], int(lengths[batch[0]]))))
        for batch, logits in pending:  # one device sync at the end, not one per batch
            out[batch] = logits.float().cpu().numpy()
        return out, lengths

    def _batches(self, order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        """Cut length-sorted pair indices into batches bounded by count and padded tokens."""
        batches: list[np.ndarray] = []
        start = 0
        n = len(order)
        size_cap, token_cap = self.settings.batch_size, self.settings.max_batch_tokens
        while start < n:
            longest = int(lengths[order[start]])
            size = max(1, min(size_cap, token_cap // max(longest, 1), n - start))
            batches.append(order[start : start + size])
            start += size
        return batches

    def _forward(self, pairs: list[tuple[list[int], list[int], list[int]]], width: int) -> Any:
        """One forward pass: logits (left minus right) for ``pairs``, left on the device."""
        import torch

        b = len(pairs)
        ids = np.full((b, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((b, width), dtype=np.int64)
        pos = np.zeros((3, b), dtype=np.int64)
        for row, (src, left, right) in enumerate(pairs):
            ls, ll = len(src), len(left)
            total = ls + ll + len(right)
            ids[row, :ls] = src
            ids[row, ls : ls + ll] = left
            ids[row, ls + ll : total] = right
            mask[row, :total] = 1
            pos[:, row] = (1, ls + 1, ls + ll + 1)
        ids[np.arange(b), pos[1]] = self.cand1_prefix_id
        ids[np.arange(b), pos[2]] = self.cand2_prefix_id
        dev = self.device
        input_ids = torch.from_numpy(ids).to(dev, non_blocking=True)
        attention = torch.from_numpy(mask).to(dev, non_blocking=True)
        where = torch.from_numpy(pos).to(dev, non_blocking=True)
        with torch.inference_mode():
            hidden = self.ranker.pretrained_model(input_ids=input_ids, attention_mask=attention).last_hidden_state
            rows = torch.arange(b, device=dev)
            src, c1, c2 = hidden[rows, where[0]], hidden[rows, where[1]], hidden[rows, where[2]]
            head = self.ranker.head_layer
            left = head(torch.cat([src, c1], dim=-1))
            right = head(torch.cat([src, c2], dim=-1))
            return (left - right).mean(dim=-1)

    def compare(
        self,
        sources: Sequence[str],
        candidates_a: Sequence[str],
        candidates_b: Sequence[str],
        mode: str = "[A,B]+[B,A]",
    ) -> np.ndarray:
        """``Blender.compare(..., return_logits=True)``'s numbers: >0 means A is better.

        "[A,B]+[B,A]" (llm-blender's default) = logit(A left) - logit(B left), both orders in
        one batched call.
        """
        if mode == "[A,B]":
            return self.score_pairs(sources, candidates_a, candidates_b)
        if mode == "[B,A]":
            return self.score_pairs(sources, candidates_b, candidates_a)
        if mode != "[A,B]+[B,A]":
            raise ValueError(f"unknown mode {mode!r}")
        n = len(sources)
        both = self.score_pairs(
            [*sources, *sources], [*candidates_a, *candidates_b], [*candidates_b, *candidates_a]
        )
        return both[:n] - both[n:]

    def rank(
        self, sources: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(scores, ranks) per input over all ordered pairs; rank 1 is best, ties share a rank.

        Scores follow llm-blender's "max_logits" policy (``mean_j(M[i,j] - M[j,i])``), so they
        equal ``Blender.rank(return_scores=True)``; unlike it, inputs may have different
        numbers of candidates.
        """
        from scipy.stats import rankdata

        srcs: list[str] = []
        lefts: list[str] = []
        rights: list[str] = []
        shape: list[int] = []
        for source, cands in zip(sources, candidates, strict=True):
            k = len(cands)
            shape.append(k)
            for i in range(k):
                for j in range(k):
                    if i != j:
                        srcs.append(source)
                        lefts.append(cands[i])
                        rights.append(cands[j])
        logits = self.score_pairs(srcs, lefts, rights)
        scores: list[np.ndarray] = []
        ranks: list[np.ndarray] = []
        at = 0
        for k in shape:
            m = np.zeros((k, k), dtype=np.float32)
            off = ~np.eye(k, dtype=bool)
            m[off] = logits[at : at + k * (k - 1)]
            at += k * (k - 1)
            s = (m - m.T).mean(axis=-1) if k else np.zeros(0, dtype=np.float32)
            scores.append(s)
            ranks.append(rankdata(-s, method="min").astype(np.int32))
        return scores, ranks


def pair_texts(rows: pl.DataFrame, requests: pl.DataFrame) -> pl.DataFrame:
    """requests + (source, left, right) texts, in the requests' order (one join, two list.get)."""
    joined = requests.join(
        rows.select("row_id", "instruction", "responses", pl.lit(True).alias("_found")),
        on="row_id", how="left", maintain_order="left",
    )
    out = joined.with_columns(
        pl.col("instruction").alias("source"),
        pl.col("responses").list.get(pl.col("candidate_a"), null_on_oob=True).alias("left"),
        pl.col("responses").list.get(pl.col("candidate_b"), null_on_oob=True).alias("right"),
    ).drop("instruction", "responses")
    bad = out.filter(pl.col("_found").is_null() | pl.col("left").is_null() | pl.col("right").is_null())
    if bad.height:
        first = bad.row(0, named=True)
        raise ValueError(
            f"{bad.height} PairRM request(s) point at missing rows or candidates, e.g. row "
            f"{first['row_id']!r} ({first['candidate_a']}, {first['candidate_b']})"
        )
    return out.drop("_found")


def judge_pairrm(
    spec: JudgeSpec,
    rows: pl.DataFrame,
    requests: pl.DataFrame,
    sink: JudgmentSink,
    *,
    model: PairRM,
) -> dict[str, Any]:
    """Score every pairwise request with PairRM and write one judgment per request to ``sink``.

    A request is one shown order (``candidate_a`` left); both orders of a pair arrive as two
    requests when ``spec.both_orders``, exactly what ``Blender.compare`` runs by default, and
    the consensus step sees both instead of their difference.
    """
    if not spec.pairwise:
        raise ValueError(f"judge {spec.name!r}: PairRM only ranks pairs (kind relative)")
    started = time.perf_counter()
    if requests.height == 0:
        return {"judge": spec.name, "requests": 0, "ok": 0, "failed": 0, "seconds": 0.0}
    items = pair_texts(rows, requests)
    sources, lefts, rights = items["source"].to_list(), items["left"].to_list(), items["right"].to_list()
    logits, tokens = model.score_pairs_with_tokens(sources, lefts, rights)
    spec_hash = spec.spec_hash()
    ok = 0
    for request, logit, n_tokens in zip(
        items.select("request_id", "row_id", "content_hash", "candidate_a", "candidate_b", "order").iter_rows(named=True),
        logits.tolist(), tokens.tolist(), strict=True,
    ):
        if np.isfinite(logit):
            verdict = "A" if logit > 0 else "B" if logit < 0 else "tie"
            sink.add(judgment_record(
                spec, request, score=float(logit), verdict=verdict, input_tokens=int(n_tokens),
                spec_hash=spec_hash,
            ))
            ok += 1
        else:  # a NaN/inf logit (e.g. an overflow) is a failure, never a guessed verdict
            sink.add(judgment_record(
                spec, request, error=f"non-finite PairRM logit {logit}", input_tokens=int(n_tokens),
                spec_hash=spec_hash, status="failed",  # the model's own output: final
            ))
    seconds = time.perf_counter() - started
    return {
        "judge": spec.name, "requests": requests.height, "ok": ok, "failed": requests.height - ok,
        "seconds": round(seconds, 3), "pairs_per_s": round(requests.height / seconds, 2) if seconds else None,
    }
