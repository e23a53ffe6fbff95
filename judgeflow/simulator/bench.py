"""Throughput of the simulator itself: ``python -m judgeflow.simulator.bench [--requests N] [--concurrency C]``.

Why: the simulator must never be the bottleneck of a client benchmark. This hammers
``POST /v1/chat/completions`` with a raw aiohttp client (no SDK overhead) while the server runs
in a child process (``process=True``), and prints requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp
import orjson

from judgeflow.simulator import Simulator, SimulatorConfig

_PROMPT = (
    "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate, and a "
    "score rubric representing a evaluation criteria are given.\n\n###The instruction to evaluate:\nExplain DPO."
    "\n\n###Response to evaluate:\n{response}\n\n###Score Rubrics:\n[Is the response helpful?]\n\n###Feedback: "
)


async def hammer(base_url: str, requests: int, concurrency: int) -> tuple[float, int]:
    """Send ``requests`` chat completions at ``concurrency``; return (seconds, non-200 count)."""
    bodies = [
        orjson.dumps({"model": "m", "messages": [{"role": "user", "content": _PROMPT.format(response=f"answer {i}")}]})
        for i in range(requests)
    ]
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(f"{base_url}/chat/completions", data=body) as resp:
                    await resp.read()
                    failures += resp.status != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, failures


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def main() -> None:
    """Run the measurement and print requests/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--in-process", action="store_true", help="server in a thread instead of a process")
    args = parser.parse_args()
    with Simulator(SimulatorConfig(latency_ms=args.latency_ms), process=not args.in_process) as sim:
        asyncio.run(hammer(sim.openai_base_url, 500, min(64, args.concurrency)))  # warm up
        pid = sim._proc.pid if sim._proc is not None else os.getpid()
        cpu0 = _cpu_seconds(pid)
        seconds, failures = asyncio.run(hammer(sim.openai_base_url, args.requests, args.concurrency))
        server_cpu = _cpu_seconds(pid) - cpu0
        stats = sim.stats()
    per_req_us = server_cpu / args.requests * 1e6
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, latency {args.latency_ms} ms: "
        f"{args.requests / seconds:,.0f} requests/s ({seconds:.2f} s wall, {failures} non-200, "
        f"server answered {stats['successful_answers']}); server CPU {per_req_us:.0f} us/request "
        f"(= {1e6 / per_req_us if per_req_us else 0:,.0f} requests/s per core)"
    )


if __name__ == "__main__":
    main()
