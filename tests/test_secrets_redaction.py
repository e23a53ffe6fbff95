"""A key that comes from a Prefect Secret block is redacted from every message from then on,
even one raised far from the client that holds it (it looks like no known key format)."""

from __future__ import annotations

import asyncio
import os

import pytest

import tasks.secrets as secrets
from judgeflow.clients.base import ClientError, redact
from judgeflow.specs import JudgeSpec


class _Block:
    def __init__(self, value: str) -> None:
        self.value = value

    def get(self) -> str:
        return self.value


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_key_from_a_secret_block_is_redacted(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    value = f"gwblock{mode}" + os.urandom(8).hex()
    monkeypatch.delenv("JF_TEST_BLOCK_KEY", raising=False)
    monkeypatch.setattr(secrets.Secret, "load", lambda name, _sync=True: _Block(value))

    async def aload(name: str) -> _Block:
        return _Block(value)

    monkeypatch.setattr(secrets.Secret, "aload", aload)
    spec = JudgeSpec(name="j", provider="anthropic", model="m", api_key_env="JF_TEST_BLOCK_KEY")
    assert redact(f"401: bad key {value}") == f"401: bad key {value}"  # not known yet
    got = secrets.resolve_api_key(spec) if mode == "sync" else asyncio.run(secrets.aresolve_api_key(spec))
    assert got == value
    assert redact(f"401: bad key {value}") == "401: bad key [redacted]"
    assert value not in str(ClientError(f"gateway said {value}"))
