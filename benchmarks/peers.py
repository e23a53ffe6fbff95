"""Peers: judgeflow against prometheus-eval and distilabel on the same simulator and rows.

Each peer lives in a throwaway virtual environment under /tmp that this script creates on demand
(``--setup``); the peers are never judgeflow dependencies. Each measurement runs in a child
process of its own venv (a driver in ``benchmarks/peer_drivers/``) so its CPU time and peak RSS
are its own; judgeflow runs through ``benchmarks.live_judging --one judgeflow`` the same way.
All clients judge the same Prometheus absolute items against one simulator process, with the
peer's batch size equal to judgeflow's concurrency. Runs are interleaved per repeat so that load
from other processes on the box hits every client alike; the ratio is taken from the medians.

    python -m benchmarks.peers --setup --rows 2000 --concurrency 256 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, md_table, median, python_module, run_json_child, verdict, write_json

DRIVERS = Path(__file__).resolve().parent / "peer_drivers"
TARGET_RATIO = 4.0


@dataclass(frozen=True)
class Peer:
    """A peer tool: where its venv lives, what to pip install, how to check it, its driver."""

    name: str
    venv: Path
    requirements: tuple[str, ...]
    import_check: str
    driver: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


PEERS: dict[str, Peer] = {
    "prometheus-eval": Peer(
        "prometheus-eval", Path("/tmp/peer-pe"), ("prometheus-eval==0.1.20",),
        "import prometheus_eval.litellm", "prometheus_eval_driver.py",
    ),
    "distilabel": Peer(
        "distilabel", Path("/tmp/peer-distilabel"), ("distilabel[openai]==1.5.3", "requests"),
        "import distilabel.steps.tasks, distilabel.models", "distilabel_driver.py",
    ),
}


def _peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OPENAI_API_KEY": "sk-bench", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "TQDM_DISABLE": "1", "DISTILABEL_LOG_LEVEL": "ERROR", "NO_PROXY": "127.0.0.1,localhost"})
    env.pop("VIRTUAL_ENV", None)
    return env


def installed(peer: Peer) -> bool:
    """True when the peer's venv exists and imports the peer."""
    if not peer.python.exists():
        return False
    proc = subprocess.run([str(peer.python), "-c", peer.import_check], capture_output=True,
                          env=_peer_env(), timeout=180, check=False)
    return proc.returncode == 0


def setup(peer: Peer) -> str | None:
    """Create the peer's venv and pip install it; None on success, else pip's error line."""
    if installed(peer):
        return None
    if not peer.python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(peer.venv)], check=True, capture_output=True)
    proc = subprocess.run([str(peer.python), "-m", "pip", "install", "-q", *peer.requirements],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not installed(peer):
        errors = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.startswith("ERROR")]
        return (errors[-1] if errors else (proc.stderr.strip().splitlines() or ["import failed"])[-1])[:400]
    return None


def _run_peer(peer: Peer, base_url: str, rows: int, concurrency: int, timeout: float) -> dict[str, Any]:
    args = [str(peer.python), str(DRIVERS / peer.driver), "--base-url", base_url, "--rows", str(rows),
            "--concurrency", str(concurrency)]
    return run_json_child(args, env=_peer_env(), timeout=timeout)


def _run_judgeflow(base_url: str, rows: int, concurrency: int, timeout: float) -> dict[str, Any]:
    out = run_json_child(python_module("benchmarks.live_judging", "--one", "judgeflow", "--base-url", base_url,
                                       "--rows", str(rows), "--concurrency", str(concurrency)), timeout=timeout)
    return {"rows": out["rows"], "ok": out["ok"], "seconds": out["wall_s"], "rows_per_s": out["rows_per_s"],
            "cpu_ms_per_row": out["cpu_ms_per_row"], "peak_rss_mb": out["peak_rss_mb"]}


def run(
    rows: int, concurrency: int, latency_ms: float, repeats: int, *, do_setup: bool,
    peers: list[str] | None = None, timeout: float = 600.0,
) -> dict[str, Any]:
    """Measure judgeflow and every available peer; medians, the ratio and the verdict."""
    from judgeflow.simulator import Simulator, SimulatorConfig

    chosen = [PEERS[name] for name in (list(PEERS) if peers is None else peers)]
    status: dict[str, str | None] = {}
    for peer in chosen:
        if do_setup:
            status[peer.name] = setup(peer)
        else:
            status[peer.name] = None if installed(peer) else f"not set up (run with --setup to create {peer.venv})"
    runs: dict[str, list[dict[str, Any]]] = {"judgeflow": []} | {p.name: [] for p in chosen if status[p.name] is None}
    errors: dict[str, str] = {}
    with Simulator(SimulatorConfig(latency_ms=latency_ms), process=True) as sim:
        for _ in range(repeats):
            runs["judgeflow"].append(_run_judgeflow(sim.openai_base_url, rows, concurrency, timeout))
            for peer in chosen:
                if status[peer.name] is not None or peer.name in errors:
                    continue
                try:
                    runs[peer.name].append(_run_peer(peer, sim.openai_base_url, rows, concurrency, timeout))
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    errors[peer.name] = str(exc).strip().splitlines()[-1][:400]
    clients: list[dict[str, Any]] = []
    for name, measured in runs.items():
        if not measured:
            continue
        clients.append({
            "client": name, "runs": measured, "ok_min": min(r["ok"] for r in measured),
            **{k: median(r[k] for r in measured) for k in ("rows_per_s", "seconds", "cpu_ms_per_row", "peak_rss_mb")},
        })
    jf = next(c for c in clients if c["client"] == "judgeflow")
    peer_rates = [c["rows_per_s"] for c in clients if c["client"] != "judgeflow"]
    best = max(peer_rates) if peer_rates else None
    ratio = jf["rows_per_s"] / best if best else None
    return {
        "rows": rows, "concurrency": concurrency, "latency_ms": latency_ms, "repeats": repeats,
        "clients": clients, "ratio_vs_fastest_peer": ratio, "target_ratio": TARGET_RATIO,
        "pass": (ratio >= TARGET_RATIO) if ratio is not None else None,
        "unavailable": {name: reason for name, reason in {**status, **errors}.items() if reason},
    }


def render(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md section for this benchmark."""
    c, lat = result["concurrency"], result["latency_ms"]
    rows = [
        [r["client"], r["rows_per_s"], f"{r['ok_min']:,}/{result['rows']:,}", f"{r['cpu_ms_per_row']:.2f}",
         r["peak_rss_mb"], len(r["runs"])]
        for r in result["clients"]
    ]
    table = md_table(["client", "rows/s (median)", "judged ok", "client CPU ms/row", "peak RSS MB", "runs"], rows)
    ratio = result["ratio_vs_fastest_peer"]
    lines = [
        f"{result['rows']:,} Prometheus absolute items, {lat:.0f} ms simulated latency, concurrency / peer batch "
        f"size {c}, medians of {result['repeats']} interleaved runs.", "", table, "",
        md_table(["target", "measured", "verdict"], [[
            f"judgeflow >= {TARGET_RATIO:g}x the faster peer", f"{ratio:.2f}x" if ratio else "no peer ran",
            verdict(result["pass"]),
        ]]),
    ]
    for name, reason in result["unavailable"].items():
        lines += ["", f"- **{name}** could not be measured: `{reason}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the peers' venvs under /tmp if missing")
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peers", nargs="+", choices=list(PEERS), default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.rows, args.concurrency, args.latency_ms, args.repeats, do_setup=args.setup, peers=args.peers)
    print(render(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
