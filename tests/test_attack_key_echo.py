"""The ``key_echo`` reliability attack, run directly against a real Prefect server.

Before the fix of issue 13 item 5 the rejected build's batch judges failed with the SDK's own
``AuthenticationError``, whose message quotes the echoed key: it reached the build's stderr, the
Prefect logs and the task-run state messages, and the attack reported each as a leak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.reliability import secrets_scan, services
from benchmarks.reliability.attacks import AttackContext, all_attacks
from judgeflow.storage.s3 import S3Config


class _S3:
    """The part of ``services.S3Services`` the attack uses, over the tests' moto server."""

    def __init__(self, url: str) -> None:
        self.direct_url = url

    def client(self) -> Any:
        return S3Config(endpoint_url=self.direct_url, region="us-east-1", addressing_style="path").client()

    def new_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@pytest.mark.prefect
@pytest.mark.timeout(900)
def test_key_echo_attack_finds_no_leak(prefect_server: Any, s3_server: str, tmp_path: Path) -> None:
    said: list[str] = []
    env = services.PrefectAPI(api_url=prefect_server.api_url, home=tmp_path / "prefect").child_env()
    ctx = AttackContext(root=tmp_path / "attack", env=env, s3=_S3(s3_server), quick=True, say=said.append)
    ctx.root.mkdir()
    result = all_attacks()["key_echo"](ctx)
    assert result.tried > 0 and said, said
    assert result.violations == [], result.violations
    assert result.numbers["rejected_keys_echoed"] > 0 and result.numbers["faults_keys_echoed"] > 0
    assert result.numbers["files_scanned"] > 10 and result.numbers["prefect_logs"] > 0
    assert result.scan_dirs == [ctx.root] and result.buckets
    # the suite's catch-all: the Prefect server's database file
    _, found = secrets_scan.scan_files([prefect_server.home], services.CANARIES[:1])
    assert found == [], found


def test_missing_paths_are_reported() -> None:
    """The attack's self-check can fail: a path without any echoed key is named."""
    from benchmarks.reliability.attacks.key_echo import REJECTED_PATHS, missing_paths

    stats = {"keys_echoed POST /v1/chat/completions": 3, "keys_echoed GET /v1/batches": 1}
    assert missing_paths(stats, REJECTED_PATHS) == ["Anthropic live (lean and SDK)", "Anthropic Message Batches"]
