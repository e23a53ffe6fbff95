"""``judgeflow run CONFIG.yaml`` and ``judgeflow demo``: run the build flow from the shell.

``run`` checks the config first (``judgeflow.preflight``: keys, endpoints, input, buckets) and
stops with exit 2 before Prefect starts or a request is paid when a check fails. The flow is
imported inside the commands: the CLI is the outer edge, the core never imports Prefect. Without
``PREFECT_API_URL`` Prefect runs the flow against a temporary local API.

This module is the one place of the package (``tests/test_layout.py``) that may import Prefect,
the flows and the tasks, always inside functions.
"""

from __future__ import annotations

import difflib
import logging
import os
import shutil
import time
import traceback
import typing
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer

from judgeflow.cli.app import app, debug_enabled
from judgeflow.cli.check import ConfigArgument, SetOption, load_cli_config, run_preflight
from judgeflow.config import BuildConfig, InputConfig, S3Settings
from judgeflow.demo import SERVE_S3_PORT, SERVE_SIM_PORT
from judgeflow.errors import ConfigError
from judgeflow.names import check_output_dir


# ---------------------------------------------------------------------------------------------
# Prefect on the command line
# ---------------------------------------------------------------------------------------------

# What Prefect prints on the command line: its progress logs, without noise a user cannot act on.
#
# ``judgeflow run`` and ``judgeflow demo`` run the flow in process. Without ``PREFECT_API_URL``
# Prefect starts a temporary local API and logs a banner about it (with a docs link), a
# "View at http://127.0.0.1:PORT/..." link per flow run that points at a server gone when the
# command ends, and a line when it stops. Those lines are dropped when the API is that temporary
# one (with a real server the link is useful and kept). Exceptions in Prefect's console logs are shortened to one line
# unless ``--debug``: judgeflow's own error handler says what went wrong and how to fix it.
# Nothing else is filtered: real warnings still show.

_TEMPORARY_API_LINES = ("Starting temporary server on", "Stopping temporary server on", "View at ")


class _DropTemporaryApiBanner(logging.Filter):
    """Drops the temporary API's banner and its per-run "View at" link."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(_TEMPORARY_API_LINES)


def _one_line(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    """An exception as its last line (``TypeName: message``), not a traceback."""
    return "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip().splitlines()[-1]


def _without_traceback(format_record: Callable[[logging.LogRecord], str]) -> Callable[[logging.LogRecord], str]:
    """A handler's ``format`` that prints a record's exception as one line.

    The traceback may already be cached on the record (``exc_text``: Prefect's API log handler
    formats it first), so both are set aside while formatting and put back for later handlers.
    """
    def format_one_line(record: logging.LogRecord) -> str:
        if not record.exc_info:
            return format_record(record)
        exc_info, exc_text = record.exc_info, record.exc_text
        record.exc_info = record.exc_text = None
        try:
            text = format_record(record)
        finally:
            record.exc_info, record.exc_text = exc_info, exc_text
        if exc_info[0] is None or str(exc_info[1]) in text:  # the message already says it
            return text
        return f"{text} ({_one_line(exc_info)})"

    format_one_line.judgeflow_one_line = True  # type: ignore[attr-defined]
    return format_one_line


def uses_temporary_api() -> bool:
    """True when no Prefect server is configured: Prefect starts a temporary one in process."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url is None and not os.environ.get("PREFECT_API_URL")


def quiet_prefect_console(*, debug: bool) -> None:
    """Install the filters above on Prefect's loggers and console handlers (idempotent).

    Call after ``import prefect`` (which configures its logging) and before the flow runs.
    """
    if uses_temporary_api():
        for name in ("prefect", "prefect.flow_runs", "prefect.server.api.server"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _DropTemporaryApiBanner) for f in logger.filters):
                logger.addFilter(_DropTemporaryApiBanner())
    if debug:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        item for item in logging.root.manager.loggerDict.values() if isinstance(item, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not getattr(handler.format, "judgeflow_one_line", False):
                handler.format = _without_traceback(handler.format)  # type: ignore[method-assign]


def s3_for_cli(settings: S3Settings) -> Any:
    """``output.s3`` as an ``S3Config``; a named prefect-aws credentials block is read (needs Prefect)."""
    if settings.aws_credentials_block:
        from tasks.io import s3_config_from_settings

        return s3_config_from_settings(settings)
    from judgeflow.preflight import default_s3_config

    return default_s3_config(settings)


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
    simulated = _simulated_note(Path(result["run_dir"]) / "judgments.parquet")
    if simulated:
        typer.echo(f"  note: {simulated}")


def _simulated_note(judgments_path: Path) -> str | None:
    """A warning when the verdicts come from judgeflow's simulator (the report says it too)."""
    if not judgments_path.is_file():
        return None
    import polars as pl

    from judgeflow.report import simulated_replies

    simulated, answered = simulated_replies(pl.read_parquet(judgments_path, columns=["status", "raw_output"]))
    if not simulated:
        return None
    share = "all" if simulated == answered else f"{simulated} of {answered}"
    return (f"{share} verdicts come from judgeflow's simulator (a hash of the texts, not a model): "
            "the model ranking in the report means nothing")


def _build(config: BuildConfig) -> tuple[dict[str, Any], str | None]:
    """Run the build flow: (its result, why it failed or None).

    A build that ran to the end but failed (``judgeflow.health``) comes back as a Failed state
    holding its result; anything else that went wrong is raised for the CLI's error handler.
    """
    from flows.build import build_preference_dataset
    from judgeflow.health import BuildFailed

    quiet_prefect_console(debug=debug_enabled())
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


def _input_formats() -> tuple[str, ...]:
    """The values ``input.format`` takes (its ``Literal``), for ``--format``'s error message."""
    literal = next(arg for arg in typing.get_args(InputConfig.model_fields["format"].annotation) if arg is not type(None))
    return typing.get_args(literal)


def with_input_flags(config: BuildConfig, format: str | None, columns: list[str]) -> BuildConfig:
    """``--format`` and ``--column FIELD=COLUMN`` (as ``judgeflow validate`` takes them) on top of
    ``input.format`` / ``input.columns``; a bad flag is one ``ConfigError`` naming it as typed."""
    if format is None and not columns:
        return config
    update: dict[str, Any] = {}
    if format is not None:
        known = _input_formats()
        if format not in known:
            close = difflib.get_close_matches(format, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"--format {format}: not a format judgeflow reads", "--format",
                              f"{hint}formats are {', '.join(known)}")
        update["format"] = format
    mapping = dict(config.input.columns)
    for pair in columns:
        field, sep, source = (part.strip() for part in pair.partition("="))
        if not sep or not field or not source:
            raise ConfigError(f"--column {pair}: expected FIELD=COLUMN", "--column", "e.g. --column instruction=question")
        mapping[field] = source
    if columns:
        try:
            update["columns"] = InputConfig.model_validate({**config.input.model_dump(), "columns": mapping}).columns
        except ValueError as exc:  # an unknown field: the validator names it and the closest one
            what = str(exc.errors()[0]["msg"]).removeprefix("Value error, ") if callable(
                getattr(exc, "errors", None)) else str(exc)
            raise ConfigError(f"--column {' --column '.join(columns)}: {what}", "--column") from None
    return config.model_copy(update={"input": config.input.model_copy(update=update)})


def _prefect_defaults() -> None:
    """Settings for a flow run from the shell: no telemetry, and time for a temporary local API
    to start on a busy 2-core box (Prefect's default gives up after 20 s)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@app.command()
def run(
    config_path: ConfigArgument,
    set_: SetOption = [],  # noqa: B006 - typer reads the default
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Also ask again what judges themselves failed (unparseable, refused)."
    )] = False,
    skip_check: Annotated[bool, typer.Option(
        "--skip-check", help="Skip the preflight checks (emergencies only: mistakes then surface late)."
    )] = False,
    format: Annotated[str | None, typer.Option(
        "--format", "-f", help="input.format: a dataset format (ultrafeedback, preference, hh-rlhf, trl, messages, "
        "distilabel, openpo, pairwise, judgeflow) or a file type (jsonl, parquet, csv), as for `judgeflow validate`."
    )] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", "-c", metavar="FIELD=COLUMN",
        help="input.columns override, e.g. instruction=question (repeatable), as for `judgeflow validate`.",
    )] = None,
) -> None:
    """Run one preference-dataset build from a config file.

    The preflight checks of `judgeflow check` run first. Exit status: 0 the build is complete,
    1 it failed (a judge failed more than max_failed_fraction of its requests, or no pairs came
    out), 2 the config is invalid or a check failed.
    """
    config = with_input_flags(load_cli_config(config_path, set_), format, column or [])
    if retry_failed:
        config = config.model_copy(update={"retry_failed": True})
    if not config.output.dir.startswith("s3://"):
        try:
            check_output_dir(config.output.dir)  # a file in the way: one line, even with --skip-check
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if not skip_check and not run_preflight(config, config_path, quiet_when_ok=True):
        typer.echo("nothing was sent; fix the above and run again (`judgeflow check CONFIG` re-checks)", err=True)
        raise typer.Exit(2)
    _prefect_defaults()
    result, failed = _build(config)
    _print_summary(result)
    _fail_if(result, failed)


def _demo_out(out: Path) -> Path:
    """``--out`` as an absolute folder (created), or a one-line error when it cannot be one."""
    fix = "name a folder you can write to, e.g. --out judgeflow-demo"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder", "--out", fix)
    try:
        check_output_dir(out, "--out", fix)
        out = out.resolve()
        out.mkdir(parents=True, exist_ok=True)
    except ValueError as exc:  # runs through a file, or not writable: the message says which
        raise ConfigError(str(exc), "--out") from None
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror or exc})", "--out", fix) from None
    return out


def _rerun_hint(config_path: Path, out: Path) -> list[str]:
    from judgeflow.demo import export_line

    return [
        "to run this config again: start the stand-ins, then run it from another terminal",
        f"  terminal 1:  judgeflow demo --serve --out {out}",
        f"  terminal 2:  {export_line()}",
        f"               judgeflow run {config_path}",
    ]


def _serve(out: Path, sim_port: int, s3_port: int) -> None:
    """The demo's stand-ins on fixed ports until Ctrl-C, with a config that points at them."""
    from judgeflow.demo import demo_config, demo_services, export_line, serve_urls, write_demo_config

    with demo_services(sim_port=sim_port, s3_port=s3_port) as services:
        path, fallback = write_demo_config(demo_config(**serve_urls(sim_port, s3_port), out_dir=out), out)
        typer.echo(f"simulator:  {services.openai_base_url} (OpenAI) and {services.anthropic_base_url} (Anthropic)")
        typer.echo(f"S3 server:  {services.s3_endpoint} (bucket judgeflow-demo)")
        if fallback:
            typer.echo(f"{out / 'config.yaml'} was edited: left alone; the demo's config is {path}")
        typer.echo("in another terminal:")
        typer.echo(f"  {export_line()}")
        typer.echo(f"  judgeflow run {path}")
        typer.echo("serving until Ctrl-C ...")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopping")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the config, the work store and a copy of what was published.")] = Path("judgeflow-demo"),
    verbose: Annotated[bool, typer.Option("--verbose", help="Show Prefect's run logs.")] = False,
    serve: Annotated[bool, typer.Option(
        "--serve", help="Only start the stand-ins (simulator + S3) on fixed ports until Ctrl-C, "
        "so `judgeflow run` can run the demo's config again."
    )] = False,
    sim_port: Annotated[int, typer.Option("--sim-port", min=1, max=65535, help="Simulator port for --serve.")] = SERVE_SIM_PORT,
    s3_port: Annotated[int, typer.Option("--s3-port", min=1, max=65535, help="S3 server port for --serve.")] = SERVE_S3_PORT,
) -> None:
    """Run the whole build on bundled sample data against local stand-ins (no keys, no network)."""
    out = _demo_out(out)
    if serve:
        _serve(out, sim_port, s3_port)
        return
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    _prefect_defaults()
    from judgeflow.demo import demo_config, demo_services, serve_urls, write_demo_config
    from judgeflow.storage.s3 import S3Config, download

    typer.echo("judgeflow demo: starting the provider simulator and a local S3 server on 127.0.0.1 ...")
    with demo_services() as services:
        config = demo_config(
            openai_base_url=services.openai_base_url,
            anthropic_base_url=services.anthropic_base_url,
            s3_endpoint=services.s3_endpoint,
            out_dir=out,
        )
        # the copy on disk points at the fixed ports of `judgeflow demo --serve`, not at these
        # stand-ins, which stop when the demo ends
        config_path, fallback = write_demo_config(demo_config(**serve_urls(), out_dir=out), out)
        if fallback:
            typer.echo(f"{out / 'config.yaml'} was edited since the demo wrote it: left alone; "
                       f"the demo's config is {config_path}")
        typer.echo(f"config written to {config_path}; running the build ...")
        result, failed = _build(config)
        copy = out / "published"
        if result.get("published"):
            shutil.rmtree(copy, ignore_errors=True)
            download(result["published"]["uri"], copy, S3Config(endpoint_url=services.s3_endpoint, region="us-east-1"))
    _print_summary(result, copy if result.get("published") else None)
    typer.echo("")
    for line in _rerun_hint(config_path, out):
        typer.echo(line)
    _fail_if(result, failed)
