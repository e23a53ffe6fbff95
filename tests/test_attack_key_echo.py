"""The ``key_echo`` reliability attack, run directly against a real Prefect server.

Before the fix of issue 13 item 5 the rejected build's batch judges failed with the SDK's own
``AuthenticationError``, whose message quotes the echoed key: it reached the build's stderr, the
Prefect logs and the task-run state messages, and the attack reported each as a leak.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.reliability import secrets_scan, services
from benchmarks.reliability.attacks import all_attacks


@pytest.mark.prefect
@pytest.mark.timeout(900)
def test_key_echo_attack_finds_no_leak(attack_context: Any, prefect_server: Any) -> None:
    said: list[str] = []
    ctx = attack_context(said)
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
