"""The simulator's key-echo mode: every error body quotes the key the client presented, on every
endpoint (live, files, batches, batch results), so the suite can prove judgeflow redacts it."""

from __future__ import annotations

import time

import httpx
import orjson

from judgeflow.simulator import Simulator, wire
from tests.fixtures.simulator import MakeSimulator

KEY = "gw-key-ECHO-0123456789abcdef"  # not shaped like sk-...: only the exact key can redact it
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def _openai(sim: Simulator) -> httpx.Client:
    return httpx.Client(base_url=sim.openai_base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)


def _anthropic(sim: Simulator) -> httpx.Client:
    return httpx.Client(base_url=sim.anthropic_base_url, headers={"x-api-key": KEY}, timeout=10)


def test_echo_unit_extends_only_error_messages() -> None:
    body = orjson.dumps({"choices": [{"message": {"content": "ok"}}], "error": {"message": "bad"}})
    out = orjson.loads(wire.echo_key(body, KEY))
    assert out["choices"][0]["message"] == {"content": "ok"}
    assert out["error"]["message"] == f"bad{wire.ECHO_PREFIX}{KEY})"
    jsonl = b'{"custom_id": "a", "error": {"message": "x"}}\n{"custom_id": "b", "response": {}}\n'
    lines = wire.echo_key(jsonl, KEY).splitlines()
    assert KEY.encode() in lines[0] and KEY.encode() not in lines[1]
    assert wire.echo_key(b"not json", KEY) == b"not json"


def test_401_quotes_the_presented_key_on_every_endpoint(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(require_api_key="the-right-key", echo_api_key=True)
    with _openai(sim) as oai, _anthropic(sim) as ant:
        replies = [
            oai.post("/chat/completions", json=CHAT),
            oai.post("/files", files={"file": ("in.jsonl", b"{}\n")}, data={"purpose": "batch"}),
            oai.get("/batches/batch_x"),
            ant.post("/v1/messages", json=MESSAGE),
            ant.post("/v1/messages/batches", json={"requests": []}),
        ]
    for reply in replies:
        assert reply.status_code == 401, reply.text
        assert KEY in reply.text, reply.text
    stats = sim.stats()
    assert stats["keys_echoed"] == len(replies)
    assert stats["keys_echoed POST /v1/files"] == 1 and stats["keys_echoed GET /v1/batches/{batch_id}"] == 1


def test_no_echo_without_the_mode(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(require_api_key="the-right-key")
    with _openai(sim) as oai:
        reply = oai.post("/chat/completions", json=CHAT)
    assert reply.status_code == 401 and KEY not in reply.text


def test_faults_and_200_error_replies_echo(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(echo_api_key=True, rate_500=1.0)
    with _openai(sim) as oai, _anthropic(sim) as ant:
        assert KEY in oai.post("/chat/completions", json=CHAT).text
        assert KEY in ant.post("/v1/messages", json=MESSAGE).text
        sim.configure(rate_500=0.0, rate_200_error=1.0)
        reply = oai.post("/chat/completions", json=CHAT)
        assert reply.status_code == 200 and "choices" not in reply.json() and KEY in reply.text
        reply = ant.post("/v1/messages", json=MESSAGE)
        assert reply.status_code == 200 and "content" not in reply.json() and KEY in reply.text
    assert sim.stats()["faults"]["error_200"] == 2


def test_batch_error_lines_echo(make_simulator: MakeSimulator) -> None:
    sim = make_simulator(echo_api_key=True, batch_request_error_rate=1.0, batch_validating_s=0.0,
                         batch_in_progress_s=0.1, batch_finalizing_s=0.0)
    line = {"custom_id": "r-0", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    with _openai(sim) as oai, _anthropic(sim) as ant:
        f = oai.post("/files", files={"file": ("in.jsonl", orjson.dumps(line) + b"\n")},
                     data={"purpose": "batch"}).json()
        batch = oai.post("/batches", json={"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                           "completion_window": "24h"}).json()
        ab = ant.post("/v1/messages/batches",
                      json={"requests": [{"custom_id": "r-0", "params": MESSAGE}]}).json()
        time.sleep(0.3)
        batch = oai.get(f"/batches/{batch['id']}").json()
        assert batch["status"] == "completed" and batch["error_file_id"]
        errors = oai.get(f"/files/{batch['error_file_id']}/content")
        assert KEY in errors.text
        ab = ant.get(f"/v1/messages/batches/{ab['id']}").json()
        assert ab["processing_status"] == "ended"
        assert KEY in ant.get(f"/v1/messages/batches/{ab['id']}/results").text
