"""The reliability suite's quick run, in CI: faults, SIGKILLs, invariants, secrets, hostile content.

Everything is real: the build runs as ``judgeflow run CONFIG.yaml`` subprocesses against the
provider simulator over HTTP, publishes to moto S3 through a fault-injecting proxy, reports to a
real Prefect server, and is killed with SIGKILL mid-submit, mid-poll and mid-upload.
See docs/reliability.md.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.reliability.suite import run_suite
from judgeflow.storage.manifest import read_manifest, write_manifest
from judgeflow.storage.s3 import S3Config, publish_run
from judgeflow.testing.faulty_proxy import FaultRates, FaultyProxy


def test_publish_survives_s3_503s_and_resets(s3_server: str, tmp_path: Path) -> None:
    """publish_run alone through the proxy at high fault rates: complete, verified, manifest last."""
    run = tmp_path / "run"
    run.mkdir()
    for i in range(10):
        (run / f"part-{i}.bin").write_bytes(os.urandom(2048 + i))
    write_manifest(run, dataset="ds", run_id="r1", date="2026-01-01", started_at=datetime.now(UTC))
    direct = S3Config(endpoint_url=s3_server, region="us-east-1", addressing_style="path")
    direct.client().create_bucket(Bucket="jf-proxy-test")
    rates = FaultRates(rate_503=0.2, rate_reset=0.1, rate_reset_after=0.1, seed=3)
    with FaultyProxy(s3_server, rates) as proxy:
        cfg = S3Config(endpoint_url=proxy.url, region="us-east-1", addressing_style="path", max_attempts=10)
        result = publish_run(run, "s3://jf-proxy-test/x", cfg)
        faults = proxy.snapshot()
    assert faults.get("fault_503", 0) + faults.get("fault_reset", 0) + faults.get("fault_reset_after", 0) > 0
    assert result.uploaded[-1].endswith("manifest.json") and len(result.uploaded) == 11
    client = direct.client()
    keys = {name: info["key"] for name, info in read_manifest(run)["files"].items()}
    for name in [f"part-{i}.bin" for i in range(10)] + ["manifest.json"]:
        key = result.prefix + keys.get(name, name)  # files under v/{version}/, the manifest beside
        body = client.get_object(Bucket="jf-proxy-test", Key=key)["Body"].read()
        assert body == (run / name).read_bytes(), name


@pytest.mark.timeout(900)
def test_quick_reliability_suite(prefect_server: Any) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="jf-reliability-quick-"))
    summary = run_suite(quick=True, workdir=workdir, prefect_api_url=prefect_server.api_url,
                        prefect_home=prefect_server.home)
    where = f"workdir {workdir}; violations: {summary['violations']}"
    # every row accounted for, once
    assert summary["rows_in"] == summary["judged"] + summary["quarantined"] + summary["failed"], where
    assert summary["quarantined"] == 3 * summary["builds"], where
    assert summary["duplicates"] == 0, where
    # nothing paid twice, every kill recovered from, nothing leaked, S3 never partial
    assert summary["double_submissions"] == 0, where
    assert summary["crashes"] >= 3 and summary["crashes"] == summary["crashes_survived"], where
    assert summary["unexpected_failures"] == 0, where
    assert summary["secrets_found"] == 0, where
    assert summary["scanned"]["prefect_logs"] > 0 and summary["scanned"]["s3_objects"] > 0, where
    assert summary["partial_manifests"] == 0, where
    # the dataset is the fault-free one; hostile candidates never change how verdicts are parsed
    assert summary["judgments_differing_from_reference"] == 0, where
    assert all(c["pairs_equal"] for c in summary["reference_comparison"]), where
    assert summary["verdicts_misparsed"] == 0 and summary["hostile_verdicts_checked"] > 0, where
    # the faults really happened
    faults = summary["faults_injected"]
    for kind in ("sim_429", "sim_500", "sim_unparseable", "sim_batch_expired", "sim_batch_request_errors"):
        assert faults.get(kind, 0) > 0, (kind, faults)
    assert sum(v for k, v in faults.items() if k.startswith("s3_")) > 0, faults
    # every targeted attack ran and broke nothing (benchmarks/reliability/attacks)
    attacks = summary["attacks"]
    for name in ("batch_results", "hostile_inputs", "hostile_replies", "key_echo", "republish", "store_recovery"):
        assert attacks.get(name, {}).get("tried", 0) > 0 and attacks[name]["violations"] == 0, (name, attacks)
    assert summary["ok"], where
