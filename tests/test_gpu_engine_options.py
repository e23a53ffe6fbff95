"""A build says how its vLLM judge runs: a sampling seed and the engine's settings in the spec."""

from __future__ import annotations

import orjson
import pytest

from judgeflow.gpu.vllm_runner import build_engine, merged_engine_options
from judgeflow.specs import JudgeSpec, Sampling

FACTORY = "tests.stand_ins.vllm_engine:make_engine"


def _spec(**overrides: object) -> JudgeSpec:
    return JudgeSpec(**{"name": "prom", "provider": "vllm", "mode": "gpu", "model": "m", **overrides})


def test_no_seed_leaves_dumps_and_hashes_as_before() -> None:
    """Stores hold judgments under spec hashes made before ``seed`` existed: an unseeded spec must
    hash (and dump) exactly as it did, a seeded one differently (its replies differ)."""
    spec = _spec()
    assert "seed" not in spec.model_dump()["sampling"] and "seed" not in spec.model_dump(mode="json")["sampling"]
    before = {"temperature": 1.0, "top_p": 0.9, "max_tokens": 1024, "repetition_penalty": 1.03}
    assert spec.model_dump()["sampling"] == before
    seeded = _spec(sampling=Sampling(seed=3))
    assert seeded.model_dump()["sampling"]["seed"] == 3
    assert JudgeSpec.model_validate(seeded.model_dump()).sampling.seed == 3  # round-trips
    assert len({spec.spec_hash(), seeded.spec_hash(), _spec(sampling=Sampling(seed=4)).spec_hash()}) == 3
    # engine settings change where and how fast, not what is asked: same hash
    assert _spec(engine={"dtype": "float32", "max_model_len": 2048}).spec_hash() == spec.spec_hash()


def test_config_fingerprint_ignores_engine_settings() -> None:
    from judgeflow.config import BuildConfig
    from judgeflow.pipeline import config_fingerprint

    base = {"input": {"uri": "rows.jsonl"}, "judges": [_spec().model_dump(mode="json")]}
    tuned = orjson.loads(orjson.dumps(base))
    tuned["judges"][0]["engine"] = {"dtype": "float32", "kv_cache_memory_bytes": 1 << 26}
    assert config_fingerprint(BuildConfig.model_validate(base)) == config_fingerprint(BuildConfig.model_validate(tuned))


def test_flow_parameter_overrides_the_spec_and_extra_merges() -> None:
    spec = _spec(engine={"dtype": "float32", "max_model_len": 2048, "extra": {"max_num_seqs": 4, "swap_space": 1}})
    merged = merged_engine_options(spec, {"factory": FACTORY, "max_model_len": 1024, "extra": {"swap_space": 0}})
    assert merged["factory"] == FACTORY and merged["dtype"] == "float32" and merged["max_model_len"] == 1024
    assert merged["extra"] == {"max_num_seqs": 4, "swap_space": 0}
    assert merged_engine_options(spec, merged) == merged  # applied twice (task, then runner): the same
    assert merged_engine_options(spec, None)["max_model_len"] == 2048


def test_unknown_engine_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="engine options for 'm'.*kv_cache_bytes"):
        build_engine("m", {"factory": FACTORY, "kv_cache_bytes": 1})
    with pytest.raises(ValueError, match="engine"):
        _spec(engine={"max_model_len": 1})  # below any usable length


def test_registered_judge_engine_override_merges_key_by_key() -> None:
    from judgeflow.registry import JudgeRegistry, resolve_entry

    registry = JudgeRegistry.from_config([_spec(name="tiny", engine={"dtype": "float32", "max_model_len": 2048})
                                          .model_dump(mode="json")])
    spec = JudgeSpec.model_validate(resolve_entry({"name": "tiny", "engine": {"max_model_len": 1024}}, registry))
    assert (spec.engine.dtype, spec.engine.max_model_len) == ("float32", 1024)


def test_seed_goes_into_the_live_request_body() -> None:
    """The same spec judged live (an OpenAI-compatible server such as vllm serve) sends its seed."""
    from judgeflow.clients.fast_openai import openai_body

    for extras in (True, False):
        body = openai_body("m", "sys", "user", Sampling(seed=5), None, vllm_extras=extras)
        assert body["seed"] == 5
        assert "seed" not in openai_body("m", "sys", "user", Sampling(), None, vllm_extras=extras)
