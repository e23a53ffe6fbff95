"""Provider ``openai`` pointed at a server that is not OpenAI's gets the fields such a server
reads (issue 15 item 6): ``max_tokens``, not OpenAI's newer ``max_completion_tokens``, which
OpenAI-compatible servers reject or ignore, and no vLLM-only sampling fields, with one warning
that says so. OpenAI's own API keeps ``max_completion_tokens`` (its reasoning models refuse
``max_tokens``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from judgeflow.clients.factory import make_transport
from judgeflow.clients.fast_openai import is_openai_hosted
from judgeflow.specs import JudgeSpec, Sampling


@pytest.fixture
async def capture() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback chat-completions endpoint that keeps every request body it gets."""
    bodies: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response({"id": "c1", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1", bodies
    await runner.cleanup()


@pytest.mark.parametrize("transport", ["fast", "sdk"])
async def test_openai_at_another_server_gets_max_tokens(
    capture: tuple[str, list[dict[str, Any]]], transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, bodies = capture
    spec = JudgeSpec(name=f"proxy-{transport}", provider="openai", model="m", base_url=url, transport=transport)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            client = make_transport(spec, "sk-body-test-0123456789")
            try:
                await client.complete("s", "u", sampling=Sampling(max_tokens=77))
            finally:
                await client.aclose()
    assert len(bodies) == 2
    for body in bodies:
        assert body["max_tokens"] == 77
        assert "max_completion_tokens" not in body and "repetition_penalty" not in body
    warnings = [r.getMessage() for r in caplog.records if spec.name in r.getMessage()]
    assert len(warnings) == 1  # once per judge and endpoint, not once per client
    assert url in warnings[0] and "max_tokens" in warnings[0] and "openai-compatible" in warnings[0]


async def test_openai_compatible_keeps_the_vllm_fields(capture: tuple[str, list[dict[str, Any]]]) -> None:
    url, bodies = capture
    client = make_transport(JudgeSpec(name="vl", provider="openai-compatible", model="m", base_url=url))
    try:
        await client.complete("s", "u", sampling=Sampling(max_tokens=5))
    finally:
        await client.aclose()
    assert bodies[0]["max_tokens"] == 5 and bodies[0]["repetition_penalty"] == 1.03


def test_what_counts_as_openais_own_api() -> None:
    assert is_openai_hosted(None)
    assert is_openai_hosted("https://api.openai.com/v1")
    assert is_openai_hosted("https://my-team.openai.azure.com/openai/v1")
    assert not is_openai_hosted("http://127.0.0.1:8000/v1")
    assert not is_openai_hosted("https://api.openai.com.evil.example/v1")
    assert not is_openai_hosted("https://openrouter.ai/api/v1")
