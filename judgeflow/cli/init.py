"""``judgeflow init [DIR]``: a short, commented config to start a build from.

It holds only what a user changes (input, judges, output); every other setting keeps its default
in code (``judgeflow.config.BuildConfig``), so the file stays readable and a new default reaches
old configs. An existing file is never overwritten without ``--force``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from judgeflow.cli.app import app
from judgeflow.errors import ConfigError

CONFIG_NAME = "config.yaml"

STARTER_CONFIG = """\
# judgeflow build config: only what you change; every other setting keeps its default
# (all keys: judgeflow.config.BuildConfig; docs/first-hour.md walks through a first build).
#
#   judgeflow check {path}    # seconds: judges, keys, endpoints, input, buckets
#   judgeflow run {path}      # the build
#
# API keys are never written here: a judge names the environment variable holding its key.
# The judges below read OPENAI_API_KEY:   export OPENAI_API_KEY=sk-...

dataset: my-preferences          # names the run folder and the published keys

input:
  uri: data/rows.jsonl           # local file (relative to where you run judgeflow) or s3://bucket/key
  # format: jsonl                # jsonl, parquet or csv; default: from the file name
  # columns: {{instruction: question, responses: answers}}   # when your columns have other names

judges:
  # a registered judge, by name (`judgeflow judges list` shows them all):
  - name: pairwise-preference
  # or your own, by provider and model:
  - name: grader
    provider: openai             # openai, anthropic, openai-compatible (vllm serve ...), vllm, pairrm
    model: gpt-4o-mini
    kind: absolute               # absolute: a 1-5 score per response; pairwise / relative: A or B
    template: prometheus         # prometheus, pairwise-json or custom
    rubric: helpfulness          # helpfulness, harmlessness, honesty, factual_validity, reasoning, or text
    api_key_env: OPENAI_API_KEY
    # base_url: http://127.0.0.1:8000/v1   # another endpoint (provider openai-compatible)
    # mode: batch                # the provider's Batch API: half the price, answers within 24 h

output:
  dir: judgeflow-out             # judgment store and run folders: a local folder or s3://bucket/prefix
  # publish_uri: s3://my-bucket/datasets   # publish the dataset there (AWS credentials from the usual chain)
"""


def starter_config(path: str) -> str:
    """The commented starter config; ``path`` is how its comments name the file."""
    return STARTER_CONFIG.format(path=path)


@app.command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write config.yaml into.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.yaml.")] = False,
) -> None:
    """Write a short, commented config.yaml to start a build from (input, judges, output)."""
    target = folder / CONFIG_NAME
    if target.exists() and not force:
        raise ConfigError(
            f"{target} already exists: not overwritten", str(target),
            "edit it, pick another DIR, or pass --force to replace it",
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder", "DIR", "name a folder for config.yaml")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(starter_config(str(target)), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {target} ({exc.strerror or exc})", str(target),
                          "name a folder you can write to") from None
    typer.echo(f"wrote {target}: set input.uri and the judges, then `judgeflow check {target}`")
