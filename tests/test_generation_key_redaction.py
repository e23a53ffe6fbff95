"""Candidate generation never stores or shows an API key that an error echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

import judgeflow.generation as generation
from judgeflow.config import GenerationConfig
from tests.fixtures.simulator import MakeSimulator
from tests.test_generation import _rows

KEY = "gwtoken-GENERATION-ECHO-8a7b6c5d4e"


def _config(openai_url: str, anthropic_url: str) -> GenerationConfig:
    return GenerationConfig.model_validate({
        "enabled": True, "n_candidates": 3,
        "generators": [
            {"name": "g1", "provider": "openai-compatible", "model": "m", "base_url": openai_url,
             "api_key_env": "GEN_ECHO_KEY"},
            {"name": "g2", "provider": "anthropic", "model": "m", "base_url": anthropic_url,
             "api_key_env": "GEN_ECHO_KEY"},
        ],
    })


def _stored(store: Path) -> str:
    return "".join(pl.read_parquet(p).write_csv() for p in (store / "generations").glob("*.parquet"))


@pytest.mark.parametrize("fault", [{"require_api_key": "the-right-key"}, {"rate_500": 1.0}])
def test_echoed_key_is_not_in_the_generation_log(make_simulator: MakeSimulator, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, fault: dict) -> None:
    monkeypatch.setenv("GEN_ECHO_KEY", KEY)
    sim = make_simulator(echo_api_key=True, retry_after_s=0.0, **fault)
    config = _config(sim.openai_base_url, sim.anthropic_base_url)
    for generator in config.generators:
        generator.concurrency = 4
    monkeypatch.setattr(generation, "_as_judge_spec", _no_retries(generation._as_judge_spec))
    _, log = generation.generate_candidates(_rows(), config, tmp_path)
    errors = log["error"].drop_nulls().to_list()
    assert len(errors) == 5 and sim.stats()["keys_echoed"] >= 5
    assert all("[redacted]" in e for e in errors), errors
    assert KEY not in "".join(errors) and KEY not in _stored(tmp_path)


def _no_retries(make: Any) -> Any:
    return lambda generator: make(generator).model_copy(update={"max_retries": 0})


def test_an_unexpected_error_is_stored_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a client error (a bug, a library's own exception): still redacted before it is stored."""
    from judgeflow.clients.base import remember_secret

    remember_secret(KEY)

    class Broken:
        async def complete(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"upstream said: bad key {KEY}")

        async def aclose(self) -> None:
            return None

    monkeypatch.setattr(generation, "make_client", lambda spec: Broken())
    _, log = generation.generate_candidates(_rows(), _config("http://127.0.0.1:9/v1", "http://127.0.0.1:9"), tmp_path)
    errors = log["error"].drop_nulls().to_list()
    assert errors and all(e == "RuntimeError: upstream said: bad key [redacted]" for e in errors), errors
    assert KEY not in _stored(tmp_path)
