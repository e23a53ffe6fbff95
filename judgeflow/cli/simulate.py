"""``judgeflow simulate``: run the provider simulator in the foreground (no credentials needed).

Point any OpenAI / Anthropic client at the printed base URLs to try judgeflow, or to reproduce a
fault scenario by hand.
"""

from __future__ import annotations

import time

import typer

from judgeflow.cli.app import app
from judgeflow.errors import EnvironmentProblem


@app.command("simulate")
def simulate(
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Fixed latency of live calls (ms)."),
    jitter_ms: float = typer.Option(0.0, "--jitter-ms", help="Extra random latency, up to this (ms)."),
    rate_429: float = typer.Option(0.0, "--rate-429", help="Share of live calls answered 429."),
    rate_500: float = typer.Option(0.0, "--rate-500", help="Share of live calls answered 500."),
    rate_529: float = typer.Option(0.0, "--rate-529", help="Share of live calls answered 529 (OpenAI: 503)."),
    rate_timeout: float = typer.Option(0.0, "--rate-timeout", help="Share of live calls never answered."),
    rate_unparseable: float = typer.Option(0.0, "--rate-unparseable", help="Share of replies with no verdict."),
    batch_seconds: float = typer.Option(2.0, "--batch-seconds", help="Seconds a batch takes to complete."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fault draws."),
) -> None:
    """Serve the OpenAI- and Anthropic-compatible simulator until Ctrl-C."""
    from judgeflow.simulator import Simulator, SimulatorConfig

    config = SimulatorConfig(
        port=port,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        rate_429=rate_429,
        rate_500=rate_500,
        rate_529=rate_529,
        rate_timeout=rate_timeout,
        rate_unparseable=rate_unparseable,
        seed=seed,
    ).with_batch_seconds(batch_seconds)
    sim = Simulator(config)
    try:
        sim.start()
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})", "--port",
            "stop what listens there, or pick another port (--port 0 takes a free one)",
        ) from None
    with sim:
        typer.echo(f"simulator listening on {sim.url}")
        typer.echo(f"OPENAI_BASE_URL={sim.openai_base_url}")
        typer.echo(f"ANTHROPIC_BASE_URL={sim.anthropic_base_url}")
        typer.echo(f"stats: {sim.url}/_sim/stats   (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopping")
