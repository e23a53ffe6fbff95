"""The root ``judgeflow`` Typer application; command modules attach themselves to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="judgeflow",
    help="Build preference datasets with LLM judges, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
