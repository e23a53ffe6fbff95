"""Identical inputs give byte-identical outputs: stable row order, times only in the manifest.

A republished run must map to the same objects as the run it repeats (docs/data.md,
"Publishing to S3"), so every file of a run folder but ``manifest.json`` has to be a function of
the inputs alone: frames sorted by a stable key, Parquet written deterministically, and no
generation time in the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from judgeflow.config import BuildConfig
from judgeflow.simulator import Simulator
from tests.stand_ins.rows import write_build_rows

pytestmark = pytest.mark.prefect


def _write_rows(path: Path, n: int = 24) -> None:
    write_build_rows(path, n)


def _config(rows: Path, out: Path, sim: Simulator) -> BuildConfig:
    live = {"provider": "openai-compatible", "mode": "live", "base_url": sim.openai_base_url,
            "api_key_env": "JF_TEST_KEY", "concurrency": 8}
    return BuildConfig.model_validate(
        {
            "dataset": "determinism",
            "input": {"uri": str(rows)},
            "judges": [
                {"name": "scorer", "kind": "absolute", "model": "prometheus-7b-v2.0", **live},
                {"name": "relative", "kind": "relative", "model": "prometheus-7b-v2.0", **live},
                {"name": "pairwise", "kind": "pairwise", "template": "pairwise-json",
                 "model": "gpt-4o-mini", **live},
            ],
            "output": {"dir": str(out), "formats": ["parquet", "jsonl"]},
            "chunk_size": 7,  # several live chunks: the store's parts arrive in any order
        }
    )


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every published file of a run folder but the manifest (the only place for times)."""
    return {
        p.relative_to(run_dir).as_posix(): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_identical_inputs_give_byte_identical_outputs(
    prefect_harness: Path, simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.build import build_preference_dataset

    monkeypatch.setenv("JF_TEST_KEY", "sk-test-determinism")
    rows = tmp_path / "rows.jsonl"
    _write_rows(rows)

    first: dict[str, Any] = build_preference_dataset(_config(rows, tmp_path / "a", simulator))
    files = _files(Path(first["run_dir"]))
    assert {"consensus_pairwise.parquet", "consensus_scores.parquet", "pairs.parquet",
            "judgments.parquet", "report.html", "quarantine.parquet"} <= set(files)

    # the same build again (same run id, answered from the store) ...
    again = build_preference_dataset(_config(rows, tmp_path / "a", simulator))
    # ... and an independent build of the same inputs (fresh store, judged again)
    fresh = build_preference_dataset(_config(rows, tmp_path / "b", simulator))
    assert again["run_dir"] == first["run_dir"]
    assert Path(fresh["run_dir"]).name == Path(first["run_dir"]).name
    for other in (again, fresh):
        theirs = _files(Path(other["run_dir"]))
        assert sorted(theirs) == sorted(files)
        differing = [name for name in files if files[name] != theirs[name]]
        assert differing == [], f"{other['run_dir']}: {differing} differ from {first['run_dir']}"
    # the manifests list the same files with the same digests; only times and paths may differ
    manifests = [orjson.loads((Path(r["run_dir"]) / "manifest.json").read_bytes())
                 for r in (first, again, fresh)]
    assert manifests[0]["files"] == manifests[1]["files"] == manifests[2]["files"]
