"""Batch life cycles of the simulator, driven by the official SDKs over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from judgeflow.simulator import Simulator, expected_score

FAST: dict[str, Any] = {
    "batch_validating_s": 0.05,
    "batch_in_progress_s": 0.3,
    "batch_finalizing_s": 0.05,
    "batch_cancel_s": 0.05,
}
ANSWERS = [f"batch candidate {i}: a short answer about preference optimisation" for i in range(20)]


def prompt(answer: str) -> str:
    return (
        "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate, "
        "and a score rubric representing a evaluation criteria are given.\n\n###The instruction to evaluate:\n"
        f"Explain DPO.\n\n###Response to evaluate:\n{answer}\n\n###Score Rubrics:\n[Helpful?]\n\n###Feedback: "
    )


def input_jsonl(answers: list[str], *, prefix: str = "req", model: str = "gpt-4o-mini") -> bytes:
    lines = [
        {
            "custom_id": f"{prefix}-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": prompt(a)}], "max_tokens": 256},
        }
        for i, a in enumerate(answers)
    ]
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def oai(sim: Simulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=3)


def submit(client: openai.OpenAI, content: bytes) -> Any:
    f = client.files.create(file=("in.jsonl", content), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")


def wait_openai(client: openai.OpenAI, batch_id: str, timeout: float = 10.0) -> tuple[Any, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = client.batches.retrieve(batch_id)
        if not seen or seen[-1] != b.status:
            seen.append(b.status)
        if b.status in ("completed", "failed", "expired", "cancelled"):
            return b, seen
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} stuck in {seen}")


def jsonl(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    raw = client.files.content(file_id).content
    assert not raw.endswith(b"\n\n")
    return [orjson.loads(line) for line in raw.splitlines()]


# --- OpenAI ----------------------------------------------------------------------------------


def test_openai_files_api(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(**FAST)
    client = oai(sim)
    content = input_jsonl(ANSWERS[:3])
    f = client.files.create(file=("in.jsonl", content), purpose="batch")
    assert f.id.startswith("file-") and f.bytes == len(content) and f.purpose == "batch" and f.status == "processed"
    assert client.files.retrieve(f.id).filename == "in.jsonl"
    assert client.files.content(f.id).content == content
    assert [x.id for x in client.files.list()] == [f.id]
    assert client.files.delete(f.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    assert sim.stats()["files_created"] == 1


def test_openai_batch_life_cycle_completed(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(**FAST)
    client = oai(sim)
    batch = submit(client, input_jsonl(ANSWERS))
    assert batch.status == "validating" and batch.id.startswith("batch_")
    done, seen = wait_openai(client, batch.id)
    assert seen[0] == "validating" and seen[-1] == "completed" and "in_progress" in seen
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (20, 20, 0)
    assert done.in_progress_at and done.finalizing_at and done.completed_at and done.failed_at is None
    assert done.error_file_id is None and done.output_file_id
    assert done.usage is not None and done.usage.input_tokens > 0
    lines = jsonl(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"req-{i}" for i in range(20))
    for line in lines:
        assert line["error"] is None and line["id"].startswith("batch_req_")
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
        body = line["response"]["body"]
        answer = ANSWERS[int(line["custom_id"].split("-")[1])]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"].endswith(f"[RESULT] {expected_score(answer)}")
    stats = sim.stats()
    assert stats["openai_batches_created"] == 1 and stats["openai_batch_requests"] == 20
    assert stats["batch_status_calls"] >= len(seen) and stats["batch_results_downloads"] == 1
    assert stats["custom_ids_paid_twice"] == 0
    listing = client.batches.list()
    assert [b.id for b in listing.data] == [batch.id] and listing.has_more is False


def test_openai_partial_errors_and_resubmission(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(batch_request_error_rate=0.3, seed=5, **FAST)
    client = oai(sim)
    done, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS)).id)
    assert done.status == "completed" and done.output_file_id and done.error_file_id
    errors = jsonl(client, done.error_file_id)
    ok = jsonl(client, done.output_file_id)
    assert len(errors) + len(ok) == 20 and 0 < len(errors) < 20
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (len(ok), len(errors))
    for line in errors:
        assert line["error"] is None and line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["type"] == "server_error"
    # Re-submit only the failed ones: no custom_id is paid twice.
    sim.configure(batch_request_error_rate=0.0)
    failed_idx = [int(line["custom_id"].split("-")[1]) for line in errors]
    retry = b"\n".join(
        line for line in input_jsonl(ANSWERS).splitlines() if int(orjson.loads(line)["custom_id"].split("-")[1]) in failed_idx
    )
    second, _ = wait_openai(client, submit(client, retry).id)
    assert second.status == "completed" and second.error_file_id is None
    assert len(jsonl(client, second.output_file_id)) == len(errors)
    assert sim.stats()["custom_ids_paid_twice"] == 0
    # Re-submitting everything would pay for the already-succeeded ones again: detected.
    submit(client, input_jsonl(ANSWERS))
    assert sim.stats()["custom_ids_paid_twice"] == 20


def test_openai_all_requests_failed(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(batch_request_error_rate=1.0, **FAST)
    client = oai(sim)
    done, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS[:4])).id)
    assert done.status == "completed" and done.output_file_id is None and done.error_file_id
    assert len(jsonl(client, done.error_file_id)) == 4


def test_openai_expired_then_resubmitted(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(expire_first_n_batches=1, batch_expire_done_fraction=0.5, **FAST)
    client = oai(sim)
    expired, seen = wait_openai(client, submit(client, input_jsonl(ANSWERS)).id)
    assert expired.status == "expired" and expired.expired_at and "finalizing" not in seen
    ok = jsonl(client, expired.output_file_id)
    errors = jsonl(client, expired.error_file_id)
    assert len(ok) == 10 and len(errors) == 10
    assert all(e["response"] is None and e["error"]["code"] == "batch_expired" for e in errors)
    rest = b"\n".join(input_jsonl(ANSWERS).splitlines()[10:])
    second, _ = wait_openai(client, submit(client, rest).id)
    assert second.status == "completed" and len(jsonl(client, second.output_file_id)) == 10
    stats = sim.stats()
    assert stats["faults"]["batch_expired"] == 1 and stats["custom_ids_paid_twice"] == 0


def test_openai_failed_validation(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(fail_validation_first_n_batches=1, **FAST)
    client = oai(sim)
    failed, seen = wait_openai(client, submit(client, input_jsonl(ANSWERS[:2])).id)
    assert seen == ["validating", "failed"] and failed.failed_at and failed.in_progress_at is None
    assert failed.errors is not None and failed.errors.data
    assert failed.errors.data[0].code == "token_limit_exceeded"
    assert failed.output_file_id is None and failed.error_file_id is None
    second, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS[:2])).id)
    assert second.status == "completed"
    # An invalid input line fails validation with its line number.
    bad = input_jsonl(ANSWERS[:2]) + b"{not json\n" + input_jsonl(ANSWERS[:1])
    third, _ = wait_openai(client, submit(client, bad).id)
    assert third.status == "failed" and third.errors is not None
    codes = {(e.code, e.line) for e in third.errors.data or []}
    assert ("invalid_json_line", 3) in codes and ("duplicate_custom_id", 4) in codes
    assert sim.stats()["faults"]["batch_validation_failed"] == 2


def test_openai_cancel_keeps_partial_results(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(**(FAST | {"batch_in_progress_s": 1.0}))
    client = oai(sim)
    batch = submit(client, input_jsonl(ANSWERS))
    while client.batches.retrieve(batch.id).status == "validating":
        time.sleep(0.02)
    time.sleep(0.4)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    done, _ = wait_openai(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    ok = jsonl(client, done.output_file_id)
    rest = jsonl(client, done.error_file_id)
    assert 0 < len(ok) < 20 and len(ok) + len(rest) == 20
    assert all(e["error"]["code"] == "batch_cancelled" for e in rest)
    assert done.request_counts is not None and done.request_counts.completed == len(ok)
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(submit_and_finish(client))


def submit_and_finish(client: openai.OpenAI) -> str:
    batch_id = submit(client, input_jsonl(ANSWERS[:1], prefix="late")).id
    wait_openai(client, batch_id)
    return batch_id


def test_openai_batch_errors_and_list_paging(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(status_429_rate=0.5, retry_after_s=0.01, **FAST)
    client = oai(sim)
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
    ids = [submit(client, input_jsonl(ANSWERS[:1], prefix=f"p{i}")).id for i in range(3)]
    client_retrying = openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=10)
    for batch_id in ids:  # status calls survive injected 429s through SDK retries
        assert wait_openai(client_retrying, batch_id)[0].status == "completed"
    assert sim.stats()["faults"]["status_429"] > 0
    with httpx.Client(base_url=sim.openai_base_url, headers={"Authorization": "Bearer k"}) as http:
        first = http.get("/batches", params={"limit": 2}).json()
        assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["has_more"] is True
        second = http.get("/batches", params={"limit": 2, "after": first["last_id"]}).json()
        assert [b["id"] for b in second["data"]] == [ids[0]] and second["has_more"] is False


# --- Anthropic -------------------------------------------------------------------------------


def ant(sim: Simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-test", max_retries=3)


def ant_requests(answers: list[str], prefix: str = "req") -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"{prefix}-{i}",
            "params": {"model": "claude-sim-judge", "max_tokens": 512, "messages": [{"role": "user", "content": prompt(a)}]},
        }
        for i, a in enumerate(answers)
    ]


def wait_anthropic(client: anthropic.Anthropic, batch_id: str, timeout: float = 10.0) -> tuple[Any, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = client.messages.batches.retrieve(batch_id)
        if not seen or seen[-1] != b.processing_status:
            seen.append(b.processing_status)
        if b.processing_status == "ended":
            return b, seen
        time.sleep(0.02)
    raise AssertionError(f"batch {batch_id} stuck in {seen}")


def test_anthropic_batch_succeeded(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(**FAST)
    client = ant(sim)
    batch = client.messages.batches.create(requests=ant_requests(ANSWERS))  # type: ignore[arg-type]
    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.results_url is None and batch.request_counts.processing == 20
    ended, seen = wait_anthropic(client, batch.id)
    assert seen == ["in_progress", "ended"] and ended.ended_at is not None
    assert ended.request_counts.succeeded == 20 and ended.request_counts.processing == 0
    assert ended.results_url == f"{sim.url}/v1/messages/batches/{batch.id}/results"
    results = list(client.messages.batches.results(batch.id))
    assert len(results) == 20
    for r in results:
        assert r.result.type == "succeeded"
        answer = ANSWERS[int(r.custom_id.split("-")[1])]
        assert r.result.message.content[0].text.endswith(f"[RESULT] {expected_score(answer)}")  # type: ignore[union-attr]
    raw = httpx.get(ended.results_url, headers={"x-api-key": "k"}).content
    assert b"\n\n" not in raw and raw.count(b"\n") == 20
    stats = sim.stats()
    assert stats["anthropic_batches_created"] == 1 and stats["anthropic_batch_requests"] == 20
    assert stats["batch_results_downloads"] == 2


def test_anthropic_errored_and_expired(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(batch_request_error_rate=0.3, expire_first_n_batches=1, seed=2, **FAST)
    client = ant(sim)
    batch = client.messages.batches.create(requests=ant_requests(ANSWERS))  # type: ignore[arg-type]
    ended, _ = wait_anthropic(client, batch.id)
    counts = ended.request_counts
    assert counts.expired == 10 and counts.errored > 0 and counts.succeeded + counts.errored == 10
    by_type: dict[str, int] = {}
    for r in client.messages.batches.results(batch.id):
        by_type[r.result.type] = by_type.get(r.result.type, 0) + 1
        if r.result.type == "errored":
            assert r.result.error.error.type == "api_error"
    assert by_type == {k: v for k, v in {"succeeded": counts.succeeded, "errored": counts.errored, "expired": 10}.items() if v}
    # Next round (only the unfinished ones) succeeds; re-sending the succeeded ones is flagged.
    sim.configure(batch_request_error_rate=0.0)
    second = client.messages.batches.create(requests=ant_requests(ANSWERS)[10:])  # type: ignore[arg-type]
    assert wait_anthropic(client, second.id)[0].request_counts.succeeded == 10
    assert sim.stats()["custom_ids_paid_twice"] == 0
    client.messages.batches.create(requests=ant_requests(ANSWERS)[:10])  # type: ignore[arg-type]
    assert sim.stats()["custom_ids_paid_twice"] == counts.succeeded


def test_anthropic_cancel_delete_list(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(**(FAST | {"batch_in_progress_s": 1.0}))
    client = ant(sim)
    batch = client.messages.batches.create(requests=ant_requests(ANSWERS))  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.delete(batch.id)
    time.sleep(0.5)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    ended, _ = wait_anthropic(client, batch.id)
    counts = ended.request_counts
    assert counts.canceled > 0 and counts.succeeded > 0 and counts.succeeded + counts.canceled == 20
    types = {r.result.type for r in client.messages.batches.results(batch.id)}
    assert types == {"succeeded", "canceled"}
    ids = [client.messages.batches.create(requests=ant_requests(ANSWERS[:1], f"l{i}")).id for i in range(3)]  # type: ignore[arg-type]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == [ids[2], ids[1]] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2, after_id=ids[1]).data] == [ids[0], batch.id]
    assert [b.id for b in client.messages.batches.list(limit=5, before_id=ids[0]).data] == [ids[2], ids[1]]
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_anthropic_invalid_batches(simulator: Simulator) -> None:
    client = ant(simulator)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=ant_requests(ANSWERS[:1], prefix="bad id!"))  # type: ignore[arg-type]
    dup = ant_requests(ANSWERS[:1]) * 2
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=dup)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[])
    assert simulator.stats()["anthropic_batches_created"] == 0


def test_batch_control_plane_faults(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(status_429_rate=0.5, batch_create_429_rate=0.5, retry_after_s=0.01, seed=4, **FAST)
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="k", max_retries=10)
    batch = client.messages.batches.create(requests=ant_requests(ANSWERS[:2]))  # type: ignore[arg-type]
    assert wait_anthropic(client, batch.id)[0].request_counts.succeeded == 2
    oai_client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=10)
    sim.configure(batch_token_limit=10)
    failed, _ = wait_openai(oai_client, submit(oai_client, input_jsonl(ANSWERS[:2])).id)
    assert failed.status == "failed" and failed.errors is not None
    assert failed.errors.data[0].code == "token_limit_exceeded"  # type: ignore[index]
    stats = sim.stats()
    assert stats["faults"]["status_429"] > 0 and stats["faults"]["batch_create_429"] > 0
    assert stats["anthropic_batches_created"] == 1 and stats["openai_batches_created"] == 1


def test_batch_unparseable_and_sticky_errors(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(rate_unparseable=1.0, **FAST)
    client = oai(sim)
    done, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS[:3])).id)
    texts = [line["response"]["body"]["choices"][0]["message"]["content"] for line in jsonl(client, done.output_file_id)]
    assert texts and all("[RESULT]" not in t for t in texts)
    sim.configure(rate_unparseable=0.0, batch_request_error_rate=0.5, batch_request_error_seed_by_attempt=False)
    failed_sets = []
    for round_ in range(2):
        b, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS, prefix=f"s{round_}")).id)
        failed_sets.append({e["custom_id"].split("-")[1] for e in jsonl(client, b.error_file_id)})
    assert failed_sets[0] and len(failed_sets[0]) < 20
    # Sticky mode: the failure depends on the custom_id only, so the same ids fail every round.
    ant_client = ant(sim)
    rounds = []
    for _ in range(2):
        ab = ant_client.messages.batches.create(requests=ant_requests(ANSWERS))  # type: ignore[arg-type]
        wait_anthropic(ant_client, ab.id)
        rounds.append({r.custom_id for r in ant_client.messages.batches.results(ab.id) if r.result.type == "errored"})
    assert rounds[0] and rounds[0] == rounds[1]


# --- result-line faults ----------------------------------------------------------------------

LINE_FAULTS: dict[str, Any] = {"batch_bad_line_rate": 0.15, "batch_unknown_id_rate": 0.1,
                               "batch_duplicate_rate": 0.1, "batch_conflict_rate": 0.15, "seed": 5}


def _line_census(raw: bytes, sent: set[str]) -> dict[str, Any]:
    """What a careful reader finds in a result file: bad lines, unknown ids, duplicate ids."""
    bad, unknown, per_id = 0, 0, {}  # type: ignore[var-annotated]
    for line in raw.splitlines():
        try:
            cid = orjson.loads(line)["custom_id"]
        except orjson.JSONDecodeError:
            bad += 1
            continue
        if cid not in sent:
            unknown += 1
        per_id.setdefault(cid, []).append(line)
    return {"bad": bad, "unknown": unknown, "dup_ids": {c for c, ls in per_id.items() if len(ls) > 1}}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_result_line_faults(make_simulator, provider: str) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(**(FAST | LINE_FAULTS))
    sent = {f"req-{i}" for i in range(20)}
    if provider == "openai":
        client = oai(sim)
        done, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS)).id)
        raw = client.files.content(done.output_file_id).content
    else:
        aclient = ant(sim)
        batch = aclient.messages.batches.create(requests=ant_requests(ANSWERS))  # type: ignore[arg-type]
        ended, _ = wait_anthropic(aclient, batch.id)
        raw = httpx.get(ended.results_url, headers={"x-api-key": "k"}).content
    census = _line_census(raw, sent)
    faults = sim.stats()["faults"]
    assert census["bad"] == faults["batch_bad_lines"] > 0
    assert census["unknown"] == faults["batch_unknown_custom_ids"] > 0
    dup = faults.get("batch_duplicate_lines", 0) + faults.get("batch_conflicting_duplicates", 0)
    assert len(census["dup_ids"]) == dup > 0 and faults["batch_conflicting_duplicates"] > 0
    # a truncated bad line still names its request; a garbage one does not
    assert any(b'"custom_id"' in line for line in raw.splitlines() if line.startswith(b"{") and not line.endswith(b"}"))
    # answers the client cannot use (bad line, two different answers) are not billed as usable,
    # so asking them again is not double payment; every other success is
    unusable = faults["batch_bad_lines"] + faults["batch_conflicting_duplicates"]
    first = sim.stats()
    assert first["custom_ids_paid_twice"] == 0
    if provider == "openai":
        client = oai(sim)
        wait_openai(client, submit(client, input_jsonl(ANSWERS)).id)
    else:
        aclient = ant(sim)
        wait_anthropic(aclient, aclient.messages.batches.create(requests=ant_requests(ANSWERS)).id)  # type: ignore[arg-type]
    assert sim.stats()["custom_ids_paid_twice"] == 20 - unusable


def test_result_line_faults_on_demand_hit_only_the_first_batches(make_simulator) -> None:  # type: ignore[no-untyped-def]
    sim = make_simulator(**(FAST | {"batch_bad_line_rate": 1.0, "batch_line_faults_first_n": 1}))
    client = oai(sim)
    first, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS[:4])).id)
    assert first.output_file_id is not None
    assert all(not line.endswith(b"}") for line in client.files.content(first.output_file_id).content.splitlines())
    second, _ = wait_openai(client, submit(client, input_jsonl(ANSWERS[:4], prefix="again")).id)
    assert len(jsonl(client, second.output_file_id)) == 4  # clean: every line parses
    assert sim.stats()["faults"]["batch_bad_lines"] == 4
