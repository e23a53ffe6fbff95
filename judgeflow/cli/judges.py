"""``judgeflow judges``: list the registered judges and show exactly what one would send.

``render`` prints the user message byte for byte (``sys.stdout.write``, no added newline), so
``judgeflow judges render prometheus-absolute --row row.json | diff - expected.txt`` is a
faithful check of the prompt a judge receives.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from judgeflow.cli.app import app
from judgeflow.columns import InputError
from judgeflow.loading import load_objects
from judgeflow.prompts import render
from judgeflow.registry import JudgeRegistry, check_spec
from judgeflow.specs import JudgeSpec

judges_app = typer.Typer(
    name="judges",
    help="List judges and render the exact prompt a judge would receive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(judges_app, name="judges")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML/JSON file with a list of judge specs (or a 'judges' list).",
                 exists=True, dir_okay=False, readable=True),
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
RENDER_OPTIONS = ("rubric", "variant", "a", "b", "reference")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


def _registry(config: Path | None) -> JudgeRegistry:
    if config is None:
        return JudgeRegistry()
    try:
        return JudgeRegistry.from_config(config)
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None


@judges_app.command("list")
def list_judges(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full specs as JSON.")] = False,
) -> None:
    """List the built-in judges and those of --config."""
    specs = _registry(config).list()
    if as_json:
        payload = [spec.model_dump(mode="json") for spec in specs]
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    header = ("NAME", "KIND", "TEMPLATE", "PROVIDER", "MODE", "MODEL", "RUBRIC")
    rows = [header] + [
        (s.name, s.kind, s.template, s.provider, s.mode, s.model, _short(s.rubric)) for s in specs
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _short(text: str, limit: int = 40) -> str:
    line = text.strip().split("\n")[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


def parse_options(options: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict; unknown keys are an error naming the known ones."""
    out: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep or key not in RENDER_OPTIONS:
            raise _fail(f"bad --option {option!r}; expected KEY=VALUE with KEY one of {', '.join(RENDER_OPTIONS)}")
        out[key] = value
    return out


def _apply(spec: JudgeSpec, options: dict[str, str]) -> JudgeSpec:
    updates: dict[str, Any] = {}
    if "rubric" in options:
        updates["rubric"] = options["rubric"]
    if "variant" in options:
        updates["variant"] = options["variant"]
    if "reference" in options:
        value = options["reference"].strip().lower()
        if value not in _TRUE | _FALSE:
            raise _fail(f"reference= must be true or false, got {options['reference']!r}")
        updates["use_reference"] = value in _TRUE
    if not updates:
        return spec
    try:
        new = JudgeSpec.model_validate({**spec.model_dump(), **updates})
        check_spec(new)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return new


def _index(options: dict[str, str], key: str, default: int) -> int:
    if key not in options:
        return default
    try:
        return int(options[key])
    except ValueError:
        raise _fail(f"{key}= must be a candidate index, got {options[key]!r}") from None


def load_row(path: Path) -> tuple[str, list[str], str | None]:
    """(instruction, responses, reference) of a ROW.json file, read as loading reads a row.

    Any layout ``judgeflow validate`` accepts works (``prompt``, ``chosen``/``rejected``,
    ``messages``, ``completions`` ...), plus a single ``response``.
    """
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise _fail(f"cannot read row {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(f"{path}: the row must be one JSON object")
    if "response" in data and not _CANDIDATE_KEYS & set(data):
        data = {**{k: v for k, v in data.items() if k != "response"}, "responses": [data["response"]]}
    try:
        loaded = load_objects([data], str(path))
    except InputError as exc:
        raise _fail(str(exc)) from None
    if loaded.rows.is_empty():
        reason = loaded.quarantine["reason"][0].removeprefix("row 0: ")
        raise _fail(f"{path}: {reason}")
    row = loaded.rows.row(0, named=True)
    return row["instruction"], row["responses"], row["reference"]


_CANDIDATE_KEYS = {"responses", "generations", "completions", "response_a", "chosen", "messages"}


@judges_app.command("render")
def render_judge(
    name: Annotated[str, typer.Argument(help="Judge name (see `judgeflow judges list`).")],
    row: Annotated[Path, typer.Option("--row", help="ROW.json: one row in any layout `judgeflow validate` reads.",
                                      exists=True, dir_okay=False, readable=True)],
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="KEY=VALUE: rubric=, variant=library|paper, a=, b=, reference=false."),
    ] = None,
    config: ConfigOption = None,
    system: Annotated[bool, typer.Option("--system", help="Print the system message instead.")] = False,
) -> None:
    """Print exactly the user message judge NAME would send for ROW.json."""
    registry = _registry(config)
    try:
        spec = registry.get(name)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    options = parse_options(option or [])
    spec = _apply(spec, options)
    instruction, responses, reference = load_row(row)
    a = _index(options, "a", 0)
    b = _index(options, "b", 1) if spec.pairwise else None
    for key, index in (("a", a), ("b", b)):
        if index is not None and not 0 <= index < len(responses):
            raise _fail(f"{key}={index} is out of range: the row has {len(responses)} response(s)")
    try:
        prompt = render(
            spec,
            instruction=instruction,
            response_a=responses[a],
            response_b=responses[b] if b is not None else None,
            reference=reference,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    sys.stdout.write((prompt.system or "") if system else prompt.user)
