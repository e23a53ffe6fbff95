"""``judgeflow run CONFIG.yaml`` and ``judgeflow demo``: run the build flow from the shell.

The flow is imported inside the commands: the CLI is the outer edge, the core never imports
Prefect. Without ``PREFECT_API_URL`` Prefect runs the flow against a temporary local API.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from judgeflow.cli.app import app
from judgeflow.config import BuildConfig, dump_config, load_config
from judgeflow.names import check_output_dir


def _apply_overrides(config: BuildConfig, overrides: list[str]) -> BuildConfig:
    """``--set output.dir=/data/out`` style overrides, validated like the file itself."""
    data: dict[str, Any] = config.model_dump(mode="json")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item!r}: expected KEY=VALUE")
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = yaml.safe_load(raw)
    return BuildConfig.model_validate(data)


def _print_summary(result: dict[str, Any], published_copy: Path | None = None) -> None:
    summary = result["summary"]
    counts = result["counts"]
    typer.echo("")
    typer.echo(f"run {summary['run_id']}")
    typer.echo(
        f"  rows in {counts['rows_in']}: judged {counts['rows_judged']}, "
        f"quarantined {counts['rows_quarantined']}, failed {counts['rows_failed']}"
    )
    judges = result.get("judges") or []
    spent = sum(j["cost_this_run_usd"] for j in judges)
    typer.echo(
        f"  requests sent {counts['requests_sent']}, answered from the store {counts['requests_cached']}; "
        f"parse failures {summary['parse_failures']}; cost of this run ${spent:.4f}"
    )
    for j in judges:
        typer.echo(
            f"  judge {j['judge']}: ok {j['ok']}, failed {j['failed']}, answered from the store "
            f"{j['from_store']}, cost of this run ${j['cost_this_run_usd']:.4f}"
        )
    typer.echo(f"  preference pairs: {counts['pairs']}")
    for key, value in summary.items():
        if key.startswith(("alpha", "position_consistency")):
            typer.echo(f"  {key}: {value:.3f}")
    for message in result.get("set_aside") or []:
        typer.echo(f"  warning: {message}")
    typer.echo(f"  run folder: {result['run_dir']}")
    typer.echo(f"  report:     {result['report']}")
    if result.get("published"):
        typer.echo(f"  published:  {result['published']['uri']} (manifest last)")
    if published_copy is not None:
        typer.echo(f"  local copy of what was published: {published_copy}")


def _build(config: BuildConfig) -> tuple[dict[str, Any], str | None]:
    """Run the build flow: (its result, why it failed or None).

    A build that ran to the end but failed (``judgeflow.health``) comes back as a Failed state
    holding its result; anything else that went wrong is raised as before.
    """
    from flows.build import build_preference_dataset
    from judgeflow.health import BuildFailed

    state = build_preference_dataset(config, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BuildFailed):
        return outcome.result, outcome.message
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome, None


def _fail_if(result: dict[str, Any], reason: str | None) -> None:
    """Exit 1 with the reasons, one a line (after the summary), when the build failed."""
    if reason is not None:
        typer.echo("\nerror: build failed:", err=True)
        for line in result.get("failures") or [reason]:
            typer.echo(f"  - {line}", err=True)
        typer.echo('nothing was published; the run folder holds the outputs, its manifest.json says '
                   '"status": "failed"', err=True)
        raise typer.Exit(1)


def _prefect_defaults() -> None:
    """Settings for a flow run from the shell: no telemetry, and time for a temporary local API
    to start on a busy 2-core box (Prefect's default gives up after 20 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@app.command()
def run(
    config_path: Annotated[Path, typer.Argument(help="Build config (YAML).", exists=True, dir_okay=False)],
    set_: Annotated[list[str], typer.Option("--set", help="Override a key: output.dir=/x")] = [],  # noqa: B006
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Also ask again what judges themselves failed (unparseable, refused)."
    )] = False,
) -> None:
    """Run one preference-dataset build from a config file.

    Exit status: 0 the build is complete, 1 it failed (a judge failed more than
    max_failed_fraction of its requests, or no pairs came out), 2 the config is invalid.
    """
    try:
        config = _apply_overrides(load_config(config_path), set_)
        if retry_failed:
            config = config.model_copy(update={"retry_failed": True})
        check_output_dir(config.output.dir)  # before Prefect starts: one line, exit 2
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _prefect_defaults()
    result, failed = _build(config)
    _print_summary(result)
    _fail_if(result, failed)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the config, the work store and a copy of what was published.")] = Path("judgeflow-demo"),
    verbose: Annotated[bool, typer.Option(help="Show Prefect's run logs.")] = False,
) -> None:
    """Run the whole build on bundled sample data against local stand-ins (no keys, no network)."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    _prefect_defaults()
    from judgeflow.demo import demo_config, demo_services
    from judgeflow.storage.s3 import S3Config, download

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    typer.echo("judgeflow demo: starting the provider simulator and a local S3 server on 127.0.0.1 ...")
    with demo_services() as services:
        config = demo_config(
            openai_base_url=services.openai_base_url,
            anthropic_base_url=services.anthropic_base_url,
            s3_endpoint=services.s3_endpoint,
            out_dir=out,
        )
        dump_config(config, out / "config.yaml")
        typer.echo(f"config written to {out / 'config.yaml'}; running the build ...")
        result, failed = _build(config)
        copy = out / "published"
        if result.get("published"):
            shutil.rmtree(copy, ignore_errors=True)
            download(result["published"]["uri"], copy, S3Config(endpoint_url=services.s3_endpoint, region="us-east-1"))
    _print_summary(result, copy if result.get("published") else None)
    _fail_if(result, failed)
