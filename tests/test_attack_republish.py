"""The reliability suite's ``republish`` attack, run on its own against a real moto server.

Real subprocesses publish changed versions of one run and are SIGKILLed after k uploads; after
every kill a fresh client must see one complete version (old or new), never a mix.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.reliability import services
from benchmarks.reliability.attacks import AttackContext, all_attacks

REPO = Path(__file__).resolve().parents[1]


def test_republish_attack_finds_no_mixed_run(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with services.s3_services() as s3:  # the suite's S3 faults on the publishes' path
        ctx = AttackContext(root=tmp_path, env=env, s3=s3, quick=True, say=lambda _: None)
        result = all_attacks()["republish"](ctx)
        faults = s3.proxy.snapshot()
    assert result.tried > 0
    assert result.violations == [], result.violations
    # the kills really landed both before and after the pointer moved
    assert result.numbers["kills"] >= 4
    assert result.numbers["old_seen"] >= 3 and result.numbers["new_seen"] >= 1, result.numbers
    assert result.numbers["identical_uploads"] == 0 and result.numbers["rebuild_data_uploads"] == 0
    assert faults.get("PUT", 0) > 0, faults  # the publishes really went through the proxy
