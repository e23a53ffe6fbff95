"""The root ``judgeflow`` Typer application; command modules attach themselves to it."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="judgeflow",
    help="Build preference datasets with LLM judges, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from judgeflow import __version__

        typer.echo(f"judgeflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Build preference datasets with LLM judges, orchestrated by Prefect."""
