"""PairRM throughput: judgeflow's length-bucketed batching vs llm-blender's ``compare``.

Both score the same candidate pairs in both orders (``compare``'s default "[A,B]+[B,A]") with
the same randomly initialised PairRM at DeBERTa-v3-large size (no download): judgeflow in bf16
on CUDA (fp32 on CPU) with its own batching, llm-blender with its defaults (batch_size 4, the
fp16 cast ``loadranker`` applies on CUDA). Reported: pairs/s (a pair = both orders), forward
passes/s, tokens/s, padding efficiency, and achieved FLOP/s as a fraction of the GPU's dense
bf16 peak (H100 SXM ~989 TFLOPS). FLOPs per pass are estimated as 2 x non-embedding parameters
x tokens plus attention (QK^T and AV, and DeBERTa's c2p/p2c terms over 2 x 256 relative
positions), on real (unpadded) tokens.

    python benchmarks/pairrm_gpu.py                  # full size, on the GPU if there is one
    python benchmarks/pairrm_gpu.py --tiny           # CPU smoke test, seconds
    python benchmarks/pairrm_gpu.py --skip-blender   # judgeflow only
    python benchmarks/pairrm_gpu.py --shape base --device cpu --rows 8 --repeat 3   # CPU ratio

With ``--repeat N`` the two paths run side by side, alternating (judgeflow, llm-blender, ...),
and each figure is the median of its N runs (all runs are listed), so a shared machine's load
weighs on both alike.

Needs the ``pairrm`` extra (llm-blender, transformers<5, torch).
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from judgeflow.gpu.pairrm import PairRM, PairRMSettings, default_device, default_dtype  # noqa: E402
from judgeflow.gpu.pairrm_random import RandomPairRMSpec, build_in_memory  # noqa: E402

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
WORDS = (
    "plants turn light water and carbon dioxide into sugar oxygen the quick brown fox jumps over "
    "lazy dog capital of France is Paris write a haiku about sea waves fold foam tide forgets "
    "every name give three tips staying healthy sleep well eat vegetables exercise summarise "
    "following text one line keep numbers 1 2 3 42 1000 sorry cannot help with that request"
).split()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny model on CPU: a smoke test")
    p.add_argument("--shape", choices=("tiny", "base", "large"), default=None,
                   help="backbone dimensions (default large; --tiny: tiny). base: DeBERTa-v3-base, for CPUs")
    p.add_argument("--rows", type=int, default=None, help="instructions (default 128; tiny 6)")
    p.add_argument("--candidates", type=int, default=4, help="candidates per row (pairs = C(n,2))")
    p.add_argument("--source-words", type=int, default=None, help="median words per instruction")
    p.add_argument("--candidate-words", type=int, default=None, help="median words per candidate")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-batch-tokens", type=int, default=65_536)
    p.add_argument("--blender-batch-size", type=int, default=4, help="llm-blender compare's default")
    p.add_argument("--skip-blender", action="store_true")
    p.add_argument("--device", default=None)
    p.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak; default by GPU name")
    p.add_argument("--repeat", type=int, default=1, help="timed repetitions per path, alternating (median reported)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_data(rows: int, k: int, src_words: int, cand_words: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """All C(k,2) pairs of ``rows`` synthetic rows; lengths log-normal around the medians."""
    rng = np.random.default_rng(seed)

    def text(median: int) -> str:
        n = max(1, int(rng.lognormal(np.log(median), 0.6)))
        return " ".join(rng.choice(WORDS, size=n))

    sources, a, b = [], [], []
    for _ in range(rows):
        src = text(src_words)
        cands = [text(cand_words) for _ in range(k)]
        for i in range(k):
            for j in range(i + 1, k):
                sources.append(src)
                a.append(cands[i])
                b.append(cands[j])
    return sources, a, b


def flops_per_pass(tokens: np.ndarray, spec: RandomPairRMSpec, nonembed_params: int) -> np.ndarray:
    """Estimated FLOPs of one forward pass per sequence length (see the module docstring)."""
    t = tokens.astype(np.float64)
    d, layers, span = spec.hidden_size, spec.num_hidden_layers, 2 * 256
    attention = layers * (4.0 * t * t * d + 4.0 * t * span * d)
    return 2.0 * nonembed_params * t + attention


def peak_tflops(device: str, override: float | None) -> tuple[float | None, str]:
    import torch

    if override:
        return override, "given"
    if not device.startswith("cuda"):
        return None, "cpu"
    name = torch.cuda.get_device_name()
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value, name
    return None, name


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Any, device: str) -> tuple[float, Any]:
    """(seconds, result) of one call, the device synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def blender_compare(ranker: Any, tokenizer: Any, collator: Any, config: Any, device: str) -> Any:
    """An llm-blender ``Blender`` holding the same ranker, as ``loadranker`` would leave it."""
    import logging

    from llm_blender import Blender
    from llm_blender.blender.config import BlenderConfig

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # Blender() warns that no ranker was given
    try:
        blender = Blender(BlenderConfig(device=device, use_tqdm=False))
    finally:
        root.setLevel(level)  # never leave the process's logging changed
    config.device = device
    blender.ranker_config = config
    model = copy.deepcopy(ranker)
    model = model.half() if device.startswith("cuda") else model.float()  # loadranker's fp16 default
    blender.ranker, blender.ranker_tokenizer, blender.ranker_collator = model.to(device).eval(), tokenizer, collator
    return blender


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    args = parse_args(argv)
    shape = args.shape or ("tiny" if args.tiny else "large")
    spec = {"tiny": RandomPairRMSpec, "base": RandomPairRMSpec.deberta_v3_base,
            "large": RandomPairRMSpec.deberta_v3_large}[shape]()
    device = args.device or ("cpu" if args.tiny else default_device())
    dtype = default_dtype(device)
    rows = args.rows or (3 if args.tiny else 128)
    src_words = args.source_words or (8 if args.tiny else 150)
    cand_words = args.candidate_words or (8 if args.tiny else 220)
    torch.manual_seed(args.seed)

    ranker, tokenizer, collator, config = build_in_memory(spec)
    nonembed = sum(p.numel() for n, p in ranker.named_parameters() if "embeddings" not in n)
    ours_model = copy.deepcopy(ranker).to(device=device, dtype=dtype).eval()
    ours = PairRM(ours_model, tokenizer, device=device, dtype=dtype, model_name="random",
                  settings=PairRMSettings(batch_size=args.batch_size, max_batch_tokens=args.max_batch_tokens))
    sources, a, b = make_data(rows, args.candidates, src_words, cand_words, args.seed)
    n_pairs = len(sources)

    blender = None if args.skip_blender else blender_compare(ranker, tokenizer, collator, config, device)

    def run_blender() -> Any:
        assert blender is not None
        return blender.compare(sources, a, b, batch_size=args.blender_batch_size, return_logits=True)

    # warm-up (CUDA context, kernels) on a few pairs; then the two paths alternate
    ours.compare(sources[:4], a[:4], b[:4])
    if blender is not None:
        blender.compare(sources[:4], a[:4], b[:4], batch_size=args.blender_batch_size, return_logits=True)
    our_runs: list[float] = []
    blender_runs: list[float] = []
    logits = b_logits = None
    for _ in range(args.repeat):
        took, logits = timed(lambda: ours.compare(sources, a, b), device)
        our_runs.append(took)
        if blender is not None:
            took, b_logits = timed(run_blender, device)
            blender_runs.append(took)
    seconds = float(np.median(our_runs))
    _, tokens = ours.score_pairs_with_tokens([*sources, *sources], [*a, *b], [*b, *a])
    batches = ours._batches(np.argsort(-tokens, kind="stable"), tokens)
    padded = sum(len(batch) * int(tokens[batch[0]]) for batch in batches)
    flops = float(flops_per_pass(tokens, spec, nonembed).sum())
    peak, device_name = peak_tflops(device, args.peak_tflops)
    result: dict[str, Any] = {
        "command": "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "device": device_name if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "model": "tiny random PairRM" if shape == "tiny" else f"random PairRM, DeBERTa-v3-{shape} dims",
        "nonembedding_params": nonembed,
        "pairs": n_pairs,
        "forward_passes": 2 * n_pairs,
        "mean_tokens_per_pass": round(float(tokens.mean()), 1),
        "judgeflow": {
            "dtype": str(dtype).replace("torch.", ""),
            "batch_size": args.batch_size,
            "max_batch_tokens": args.max_batch_tokens,
            "seconds": round(seconds, 3),
            "runs_seconds": [round(t, 3) for t in our_runs],
            "pairs_per_s": round(n_pairs / seconds, 2),
            "passes_per_s": round(2 * n_pairs / seconds, 2),
            "tokens_per_s": round(float(tokens.sum()) / seconds, 1),
            "padding_efficiency": round(float(tokens.sum()) / padded, 3),
            "tflops_achieved": float(f"{flops / seconds / 1e12:.3g}"),
            "fraction_of_bf16_peak": round(flops / seconds / 1e12 / peak, 4) if peak else None,
        },
        "peak_bf16_tflops": peak,
    }
    if blender is not None:
        b_seconds = float(np.median(blender_runs))
        agree = float(np.mean(np.sign(b_logits) == np.sign(logits)))
        result["llm_blender_compare"] = {
            "dtype": "float16" if device.startswith("cuda") else "float32",
            "batch_size": args.blender_batch_size,
            "seconds": round(b_seconds, 3),
            "runs_seconds": [round(t, 3) for t in blender_runs],
            "pairs_per_s": round(n_pairs / b_seconds, 2),
            "tflops_achieved": float(f"{flops / b_seconds / 1e12:.3g}"),
            "fraction_of_bf16_peak": round(flops / b_seconds / 1e12 / peak, 4) if peak else None,
            "max_abs_logit_diff": round(float(np.max(np.abs(b_logits - logits))), 6),
            "verdict_agreement": round(agree, 4),
        }
        result["speedup"] = round(b_seconds / seconds, 2)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
