"""``judgeflow check CONFIG``: the preflight checks as a short table (also the first step of ``run``).

Loading the config is itself the first check: a config that does not load (a typo in a key, an
unknown judge name) is reported by ``load_cli_config`` as a ``ConfigError`` naming the file and
the key. Everything else is ``judgeflow.preflight``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from judgeflow.cli.app import app
from judgeflow.config import BuildConfig, load_config
from judgeflow.errors import ConfigError, config_error
from judgeflow.preflight import TIMEOUT_S, CheckResult, failed, preflight, timed

ConfigArgument = Annotated[
    Path, typer.Argument(metavar="CONFIG", help="Build config (YAML).", exists=True, dir_okay=False)
]
SetOption = Annotated[
    list[str], typer.Option("--set", metavar="KEY=VALUE", help="Override a config key, e.g. output.dir=/data/out.")
]


def apply_overrides(config: BuildConfig, overrides: list[str], source: str) -> BuildConfig:
    """``--set output.dir=/data/out`` style overrides, validated like the file itself."""
    data: dict[str, Any] = config.model_dump(mode="json")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE", "--set", "e.g. --set output.dir=/data/out")
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section", "--set", "name a key such as output.dir")
            target = child
        target[parts[-1]] = yaml.safe_load(raw)
    try:
        return BuildConfig.model_validate(data)
    except ValueError as exc:
        raise config_error(exc, f"{source} with --set {' '.join(overrides)}") from None


def load_cli_config(path: Path, overrides: list[str]) -> BuildConfig:
    """The config from ``path`` plus ``--set`` overrides, or a ``ConfigError`` naming file and key."""
    try:
        config = load_config(path)
    except ConfigError:
        raise
    except ValueError as exc:
        if callable(getattr(exc, "errors", None)):  # pydantic: one line per wrong key
            raise config_error(exc, str(path)) from None
        raise ConfigError(str(exc), str(path), "fix the file (YAML, a mapping at the top level)") from None
    return apply_overrides(config, overrides, str(path)) if overrides else config


def _table(results: list[CheckResult], only_failed: bool = False) -> list[str]:
    shown = failed(results) if only_failed else results
    width = max((len(r.name) for r in shown), default=0)
    lines = []
    for r in shown:
        lines.append(f"  {'ok  ' if r.ok else 'FAIL'}  {r.name.ljust(width)}  {r.detail}")
        if not r.ok and r.fix:
            lines.append(f"  {'':4}  {'':{width}}  fix: {r.fix}")
    return lines


def run_preflight(
    config: BuildConfig, source: Path, *, timeout_s: float = TIMEOUT_S, quiet_when_ok: bool = False
) -> bool:
    """Run the checks and print them; True when all passed.

    The config itself was loaded (and validated) by ``load_cli_config``: it is the first row.
    ``quiet_when_ok`` (``run``): one line when everything passed; otherwise an ``error:`` line
    and only the failures.
    """
    from judgeflow.cli.run import s3_for_cli  # run.py is where the CLI may touch Prefect

    loaded = CheckResult("config", True, f"{source}: valid ({len(config.judges)} judges)")
    results, seconds = timed(lambda: [loaded, *preflight(config, timeout_s=timeout_s, s3_resolver=s3_for_cli)])
    bad = failed(results)
    if quiet_when_ok:
        if not bad:
            typer.echo(f"preflight: {len(results)} checks passed ({seconds:.1f} s)")
            return True
        typer.echo(f"error: preflight: {len(bad)} of {len(results)} checks failed", err=True)
    for line in _table(results, only_failed=quiet_when_ok):
        typer.echo(line, err=bool(bad))
    if not quiet_when_ok:
        summary = f"{len(results)} checks: {len(results) - len(bad)} ok, {len(bad)} failed ({seconds:.1f} s)"
        typer.echo(("error: " if bad else "") + summary, err=bool(bad))
    return not bad


@app.command("check")
def check_command(
    config_path: ConfigArgument,
    set_: SetOption = [],  # noqa: B006 - typer reads the default
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds an endpoint or S3 call may take.")
    ] = TIMEOUT_S,
) -> None:
    """Check a build config in seconds: judges, keys, endpoints, input, state and publish buckets.

    Exit status: 0 every check passed, 2 one failed (each failure says what to fix).
    """
    config = load_cli_config(config_path, set_)
    typer.echo(f"judgeflow check {config_path}")
    if not run_preflight(config, config_path, timeout_s=timeout_s):
        raise typer.Exit(2)
