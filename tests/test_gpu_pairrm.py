"""PairRM through llm-blender on CPU with a tiny random checkpoint loaded the real way.

The checkpoint is written in the layout ``Blender.loadranker`` reads and loaded through it, so
everything but the weights' values is PairRM's own path. llm-blender's ``compare``/``rank``
are the oracle for judgeflow's batched scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llm_blender")

from judgeflow.gpu.pairrm import PairRM, PairRMSettings, _backbone_override, judge_pairrm  # noqa: E402
from judgeflow.gpu.pairrm_random import save_checkpoint  # noqa: E402
from judgeflow.judging.records import JudgmentSink, read_judgments  # noqa: E402
from judgeflow.specs import JudgeSpec, expand_requests  # noqa: E402
from tests.stand_ins.rows import rows_frame  # noqa: E402

pytestmark = pytest.mark.pairrm

SOURCES = ["Explain photosynthesis.", "What is the capital of France?", "Write a haiku [SEP] about the sea."]
A = ["Plants make sugar.", "Paris.", "Waves fold into foam"]
B = ["No idea, sorry.", "It is Paris, the capital of France.", "the tide forgets every name, the quick brown fox"]
LONG = "Summarise the following text in one line and keep the numbers 1, 2, 3, 42 and 1000. " * 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("pairrm"))


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> PairRM:
    return PairRM.load(str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def blender(checkpoint: Path):  # llm-blender's own object: the oracle
    from llm_blender import Blender
    from llm_blender.blender.config import BlenderConfig

    b = Blender(BlenderConfig(device="cpu", use_tqdm=False))
    b.loadranker(str(checkpoint), device="cpu", fp16=False, model_name=str(checkpoint / "backbone"))
    return b


def test_checkpoint_has_loadranker_layout(checkpoint: Path) -> None:
    assert (checkpoint / "config.json").is_file()
    assert (checkpoint / "pytorch_model.bin").is_file()
    assert (checkpoint / "backbone" / "tokenizer.json").is_file()
    assert _backbone_override(str(checkpoint), None) == {"model_name": str((checkpoint / "backbone").resolve())}
    assert _backbone_override("llm-blender/PairRM", "/models/deberta") == {"model_name": "/models/deberta"}
    assert _backbone_override("llm-blender/PairRM", None) == {}


def test_loaded_through_llm_blender(model: PairRM) -> None:
    import torch
    from llm_blender.pair_ranker.ranker import CrossCompareReranker

    assert isinstance(model.ranker, CrossCompareReranker)
    assert model.device == "cpu" and model.dtype == torch.float32
    assert next(model.ranker.parameters()).dtype == torch.float32
    assert model.cand1_prefix_id != model.cand2_prefix_id


@pytest.mark.parametrize("mode", ["[A,B]+[B,A]", "[A,B]", "[B,A]"])
def test_compare_matches_llm_blender(model: PairRM, blender, mode: str) -> None:
    ours = model.compare(SOURCES, A, B, mode=mode)
    theirs = blender.compare(SOURCES, A, B, return_logits=True, mode=mode, disable_tqdm=True)
    assert ours.shape == (3,)
    assert np.abs(ours).min() > 1e-4  # random but not degenerate: the sign means something
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_both_orders_are_two_forward_passes(model: PairRM) -> None:
    ab = model.score_pairs(SOURCES, A, B)
    ba = model.score_pairs(SOURCES, B, A)
    np.testing.assert_allclose(model.compare(SOURCES, A, B), ab - ba, rtol=1e-5, atol=1e-7)
    assert not np.allclose(ab, -ba)  # PairRM has position bias: the orders really differ


def test_rank_matches_llm_blender(model: PairRM, blender) -> None:
    cands = [[a, b, "The quick fox"] for a, b in zip(A, B, strict=True)]
    scores, ranks = model.rank(SOURCES, cands)
    np.testing.assert_allclose(
        np.stack(scores), blender.rank(SOURCES, cands, return_scores=True, disable_tqdm=True), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_array_equal(np.stack(ranks), blender.rank(SOURCES, cands, disable_tqdm=True))
    # unlike llm-blender, inputs may have different numbers of candidates
    scores, ranks = model.rank(SOURCES[:2], [A, B + ["x", "y"]])
    assert [len(s) for s in scores] == [3, 5]
    assert sorted(ranks[1].tolist())[0] == 1


def test_batching_does_not_change_results(checkpoint: Path, model: PairRM) -> None:
    sources, lefts, rights = SOURCES * 4 + [LONG], A * 4 + [A[0]], B * 4 + [LONG]
    reference = model.score_pairs(sources, lefts, rights)
    one = PairRM(model.ranker, model.tokenizer, device="cpu", dtype=model.dtype,
                 settings=PairRMSettings(batch_size=1))
    budget = PairRM(model.ranker, model.tokenizer, device="cpu", dtype=model.dtype,
                    settings=PairRMSettings(batch_size=64, max_batch_tokens=120))
    assert len(budget._batches(np.arange(3), np.array([60, 50, 40]))) == 2
    np.testing.assert_allclose(one.score_pairs(sources, lefts, rights), reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(budget.score_pairs(sources, lefts, rights), reference, rtol=1e-4, atol=1e-6)


def test_truncation_matches_llm_blender(checkpoint: Path) -> None:
    from llm_blender import Blender
    from llm_blender.blender.config import BlenderConfig

    short = PairRM.load(str(checkpoint), device="cpu",
                        settings=PairRMSettings(source_max_length=24, candidate_max_length=10))
    b = Blender(BlenderConfig(device="cpu", use_tqdm=False))
    b.loadranker(str(checkpoint), device="cpu", fp16=False, model_name=str(checkpoint / "backbone"),
                 source_maxlength=24, candidate_maxlength=10)
    for src, a, c in [(LONG, "Plants make sugar and oxygen from light and water.", "The quick brown fox jumps."),
                      ("Explain photosynthesis.", "Plants make sugar.", LONG)]:
        ours, tokens = short.score_pairs_with_tokens([src], [a], [c])
        theirs = b.compare([src], [a], [c], return_logits=True, mode="[A,B]", batch_size=1, disable_tqdm=True)
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
        assert tokens[0] <= 24 + 2 * (10 + 24 // 2)


def test_judge_pairrm_writes_both_orders(tmp_path: Path, model: PairRM) -> None:
    spec = JudgeSpec(name="pairrm", kind="relative", provider="pairrm", mode="gpu", model="tiny-pairrm")
    rows = rows_frame()
    requests = expand_requests(rows, spec)
    assert requests.height == 2 * (3 + 1 + 1)
    with JudgmentSink(tmp_path / "j") as sink:
        summary = judge_pairrm(spec, rows, requests, sink, model=model)
    assert summary["ok"] == requests.height and summary["failed"] == 0
    got = read_judgments(tmp_path / "j").collect().sort("request_id")
    assert got["request_id"].to_list() == sorted(requests["request_id"].to_list())
    assert set(got["order"]) == {"AB", "BA"}
    assert set(got["kind"]) == {"relative"} and set(got["status"]) == {"ok"}
    assert got["feedback"].null_count() == got.height
    assert set(got["verdict"]) <= {"A", "B"}
    # verdict follows the sign of the logit; preferred names the shown winner
    for r in got.iter_rows(named=True):
        assert (r["verdict"] == "A") == (r["score"] > 0)
        assert r["preferred"] == (r["candidate_a"] if r["verdict"] == "A" else r["candidate_b"])
        assert r["input_tokens"] > 0 and r["judge_model"] == "tiny-pairrm"
    # the AB record equals llm-blender's single-order logit for that pair
    first = got.filter(pl_col_eq("order", "AB")).row(0, named=True)
    row = rows.filter(pl_col_eq("row_id", first["row_id"])).row(0, named=True)
    expected = model.score_pairs(
        [row["instruction"]], [row["responses"][first["candidate_a"]]], [row["responses"][first["candidate_b"]]]
    )
    assert first["score"] == pytest.approx(float(expected[0]), rel=1e-4, abs=1e-6)


def test_judge_pairrm_rejects_missing_candidates(tmp_path: Path, model: PairRM) -> None:
    spec = JudgeSpec(name="pairrm", kind="relative", provider="pairrm", mode="gpu", model="tiny")
    rows = rows_frame()
    requests = expand_requests(rows, spec).with_columns(candidate_b=9)
    with JudgmentSink(tmp_path / "j") as sink, pytest.raises(ValueError, match="missing"):
        judge_pairrm(spec, rows, requests, sink, model=model)


def pl_col_eq(name: str, value: object):
    import polars as pl

    return pl.col(name) == value
