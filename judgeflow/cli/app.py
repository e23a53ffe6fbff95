"""The root ``judgeflow`` Typer application; command modules attach themselves to it.

Two things every command shares live here:

* **One error contract.** ``Group.invoke`` runs the command; a ``UserError`` (or a library error
  ``judgeflow.errors.explain`` recognises) is printed as a few lines (what, where, how to fix) and
  exits 2 (usage or config) or 1 (the build failed). Anything else is a bug: one line, exit 1,
  and the traceback only with ``judgeflow --debug ...``.
* **Plain help.** Typer's rich panels print a type after every flag (``--retry-failed <bool>``)
  and wrap required arguments in braces named after the Python parameter (``{config_path}``);
  help here is click's plain layout, and usage lines name arguments by their metavar
  (``judgeflow run [OPTIONS] CONFIG``).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from judgeflow.errors import UserError, explain

DEBUG_ENV = "JUDGEFLOW_DEBUG"
_state = {"debug": False}  # set by the root callback on every invocation

#: What click/typer raise to exit, abort or report a usage error: they print and exit themselves.
#: (typer >= 0.2x vendors click, older ones use click's classes: accept both.)
_PASS_THROUGH: tuple[type[BaseException], ...] = tuple(
    cls for cls in (typer.Exit, typer.Abort, getattr(typer, "TyperException", None)) if isinstance(cls, type)
)
try:  # pragma: no cover - depends on the typer release
    import click as _real_click

    _PASS_THROUGH += (_real_click.exceptions.Exit, _real_click.exceptions.Abort, _real_click.ClickException)
except ImportError:  # pragma: no cover
    pass


def debug_enabled() -> bool:
    """True when ``--debug`` was given (or ``JUDGEFLOW_DEBUG=1``): show tracebacks."""
    return _state["debug"] or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def print_error(error: UserError) -> None:
    """The error's lines on stderr."""
    for line in error.lines():
        typer.echo(line, err=True)


def handle(exc: Exception) -> int:
    """Print ``exc`` the way a user should read it; the exit status to end with."""
    if debug_enabled():
        traceback.print_exception(exc)
    error = explain(exc)
    if error is not None:
        print_error(error)
        return error.exit_code
    if not debug_enabled():
        text = str(exc).strip().splitlines()
        typer.echo(f"error: unexpected {type(exc).__name__}: {text[0] if text else ''}".rstrip(), err=True)
        typer.echo("  this is a bug in judgeflow: run again with `judgeflow --debug ...` for the traceback", err=True)
    return 1


def _usage_pieces(command: TyperCommand, ctx: typer.Context) -> list[str]:
    """click's own usage line: ``[OPTIONS] CONFIG [DIR]`` (never ``{config_path}``)."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if getattr(param, "param_type_name", "") == "argument":
            name = param.metavar or (param.name or "ARG").upper()
            piece = name if param.required else f"[{name}]"
            pieces.append(piece + ("..." if param.nargs != 1 else ""))
    return pieces


class Command(TyperCommand):
    """A command whose usage line names its arguments by metavar."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        return _usage_pieces(self, ctx)


class PlainGroup(TyperGroup):
    """A group whose commands (and sub-groups' commands) print plain usage lines.

    Command groups other modules declare with a bare ``typer.Typer()`` (``judgeflow judges``)
    get ``TyperCommand``s; they are given ``Command``'s usage line as they are looked up, so
    every help page reads the same.
    """

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if type(command) is TyperCommand:
            command.__class__ = Command
        elif type(command) is TyperGroup:
            command.__class__ = PlainGroup
        return command


class Group(PlainGroup):
    """The root group: runs a command under the error contract (see the module docstring)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise  # exits, aborts and usage errors: click prints and exits as usual
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the one place a user-facing error is decided
            raise typer.Exit(handle(exc)) from None


class App(typer.Typer):
    """``typer.Typer`` whose commands default to ``Command`` (plain usage lines)."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Callable[..., Any]:
        return super().command(*args, cls=cls or Command, **kwargs)


app = App(
    name="judgeflow",
    help="Build preference datasets with LLM judges, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback when something goes wrong.")
    ] = False,
) -> None:
    """Build preference datasets with LLM judges, orchestrated by Prefect."""
    _state["debug"] = debug
