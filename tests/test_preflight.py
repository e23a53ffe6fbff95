"""``judgeflow.preflight``: each check catches its mistake, names where it is and never shows a key.

Real services on loopback: the provider simulator, a moto S3 server, and for a refused key a
tiny HTTP server that answers 401 (the simulator answers keys only on its judging routes).
"""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from judgeflow.config import BuildConfig
from judgeflow.preflight import HEAD_BYTES, CheckResult, failed, preflight
from judgeflow.simulator import Simulator

KEY_VAR = "JF_PREFLIGHT_TEST_KEY"
SECRET = "sk-preflight-secret-value-123"


def rows_file(path: Path, n: int = 5, *, bad_after: int | None = None) -> Path:
    lines = []
    for i in range(n):
        row: dict[str, Any] = {"instruction": f"Question {i}?", "responses": [f"answer a{i}", f"answer b{i}"]}
        if bad_after is not None and i >= bad_after:
            row = {"instruction": "", "responses": []}
        lines.append(orjson.dumps(row))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def make_config(tmp_path: Path, base_url: str, **changes: Any) -> BuildConfig:
    data: dict[str, Any] = {
        "input": {"uri": str(rows_file(tmp_path / "rows.jsonl"))},
        "judges": [{
            "name": "grader", "provider": "openai-compatible", "model": "m", "base_url": base_url,
            "api_key_env": KEY_VAR, "template": "prometheus", "rubric": "helpfulness",
        }],
        "output": {"dir": str(tmp_path / "out")},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    return BuildConfig.model_validate(data)


def by_name(results: list[CheckResult], prefix: str) -> CheckResult:
    return next(r for r in results if r.name.startswith(prefix))


def no_secret_anywhere(results: list[CheckResult]) -> None:
    for r in results:
        assert SECRET not in r.detail and SECRET not in (r.fix or "")


def test_a_sound_config_passes_every_check(simulator: Simulator, tmp_path: Path) -> None:
    results = preflight(make_config(tmp_path, simulator.openai_base_url), env={KEY_VAR: SECRET})
    assert failed(results) == [], results
    names = [r.name for r in results]
    assert names[0] == "judge grader" and f"key {KEY_VAR}" in names
    assert any(n.startswith("endpoint http://127.0.0.1") for n in names)
    assert {"input", "state"} <= set(names)
    no_secret_anywhere(results)
    stats = simulator.stats()
    assert stats["chat_completions"] == 0 and stats["successful_answers"] == 0  # nothing judged, nothing paid


def test_a_missing_key_is_named_with_the_variable_to_set(simulator: Simulator, tmp_path: Path) -> None:
    results = preflight(make_config(tmp_path, simulator.openai_base_url), env={})
    bad = by_name(results, "key ")
    assert not bad.ok
    assert KEY_VAR in bad.detail and "grader" in bad.detail
    assert bad.fix is not None and f"export {KEY_VAR}=" in bad.fix


def test_a_hosted_provider_needs_its_default_key(tmp_path: Path) -> None:
    config = make_config(tmp_path, "http://unused", judges=[{"name": "g", "provider": "openai", "model": "gpt-4o-mini"}])
    from judgeflow.preflight import check_keys

    (result,) = check_keys(config, env={})
    assert not result.ok and "OPENAI_API_KEY" in result.detail


def test_a_dead_endpoint_is_named_by_its_url(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    results = preflight(make_config(tmp_path, url), env={KEY_VAR: SECRET}, timeout_s=2)
    bad = by_name(results, "endpoint")
    assert not bad.ok and url in bad.detail and "grader" in bad.detail
    assert bad.fix is not None and "judges[0].base_url" in bad.fix


class _Refuse(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(401)
        self.end_headers()
        self.wfile.write(b'{"error": {"message": "Incorrect API key provided"}}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_key_says_which_variable_without_showing_it(refusing_server: str, tmp_path: Path) -> None:
    results = preflight(make_config(tmp_path, refusing_server), env={KEY_VAR: SECRET})
    bad = by_name(results, "endpoint")
    assert not bad.ok and "401" in bad.detail and KEY_VAR in bad.detail
    no_secret_anywhere(results)


def test_unknown_template_and_rubric_suggest_the_closest(simulator: Simulator, tmp_path: Path) -> None:
    base = {"provider": "openai-compatible", "model": "m", "base_url": simulator.openai_base_url}
    config = make_config(tmp_path, simulator.openai_base_url, judges=[
        {"name": "a", "template": "prometheus2", **base},
        {"name": "b", "rubric": "helpfullness", **base},
        {"name": "c", "rubric": "Is the answer polite and correct?", **base},
    ])
    results = preflight(config, env={})
    a, b, c = (by_name(results, f"judge {n}") for n in "abc")
    assert not a.ok and "prometheus2" in a.detail and "did you mean prometheus" in a.detail
    assert a.fix is not None and "judges[0].template" in a.fix
    assert not b.ok and "did you mean helpfulness" in b.detail and "judges[1].rubric" in (b.fix or "")
    assert c.ok  # a rubric written out as text is a rubric


def test_missing_and_binary_inputs_fail_with_the_file_named(simulator: Simulator, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.jsonl")
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, input__uri=missing), env={}), "input")
    assert not result.ok and missing in result.detail and "input.uri" in (result.fix or "")

    binary = tmp_path / "bytes.jsonl"
    binary.write_bytes(bytes(range(256)) * 40)
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, input__uri=str(binary)), env={}), "input")
    assert not result.ok and str(binary) in result.detail and "not JSON" in result.detail
    assert "judgeflow-check-" not in result.detail  # the temporary copy of the head is never named


def test_only_the_head_of_the_input_is_read(simulator: Simulator, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    count = HEAD_BYTES // 40 + 100
    good = b"".join(
        orjson.dumps({"instruction": f"Q{i}?", "responses": [f"a{i}", f"b{i}"]}) + b"\n" for i in range(count)
    )
    assert len(good) > HEAD_BYTES
    big.write_bytes(good + b"this line is not JSON\n")  # the broken line lies past the head
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, input__uri=str(big)), env={}), "input")
    assert result.ok and "the first" in result.detail and "quarantined" not in result.detail

    gz = tmp_path / "rows.jsonl.gz"
    gz.write_bytes(gzip.compress(good + good))
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, input__uri=str(gz)), env={}), "input")
    assert result.ok, result


def test_a_head_with_no_valid_row_fails_with_the_reasons(simulator: Simulator, tmp_path: Path) -> None:
    bad = rows_file(tmp_path / "bad.jsonl", 4, bad_after=0)
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, input__uri=str(bad)), env={}), "input")
    assert not result.ok and "none of" in result.detail and str(bad) in result.detail


def test_output_dir_that_is_a_file_fails(simulator: Simulator, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    config = make_config(tmp_path, simulator.openai_base_url, output={"dir": str(blocker)})
    result = by_name(preflight(config, env={}), "state")
    assert not result.ok and "output.dir" in result.detail


def test_publish_bucket_is_written_and_cleaned(simulator: Simulator, tmp_path: Path, s3_server: str, s3_bucket: str,
                                               s3_config: Any) -> None:
    output = {"dir": str(tmp_path / "out"), "publish_uri": f"s3://{s3_bucket}/datasets",
              "s3": {"endpoint_url": s3_server, "region": "us-east-1"}}
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, output=output), env={}), "publish")
    assert result.ok, result
    assert s3_config.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0  # nothing left behind

    output["publish_uri"] = "s3://no-such-bucket-jf/datasets"
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, output=output), env={}), "publish")
    assert not result.ok and "no-such-bucket-jf" in result.detail and "does not exist" in result.detail


def test_publish_without_credentials_says_how_to_give_them(
    simulator: Simulator, tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    output = {"dir": str(tmp_path / "out"), "publish_uri": "s3://some-bucket/datasets",
              "s3": {"endpoint_url": s3_server, "region": "us-east-1"}}
    result = by_name(preflight(make_config(tmp_path, simulator.openai_base_url, output=output), env={}), "publish")
    assert not result.ok and "no AWS credentials" in result.detail and "AWS_ACCESS_KEY_ID" in (result.fix or "")
