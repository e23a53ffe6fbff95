"""Which source column holds which field: aliases for the dataset layouts people actually have.

Preference data arrives in a handful of shapes (judgeflow's native rows, OpenPO's ``prompt`` +
``responses``, distilabel's ``instruction`` + ``generations`` + ``generation_models``, pairwise
``response_a``/``response_b`` dumps). Rather than asking users to rewrite their files, the loader
resolves each logical field to a source column through the alias lists below; a ``ColumnMapping``
(``--column FIELD=COLUMN`` on the CLI, ``input.columns`` in a config) overrides any of them.
Resolution looks only at column *names*, so it is the same for JSONL keys, Parquet columns and
CSV headers. Layouts that need more than a column choice (UltraFeedback, chosen/rejected pairs,
chat messages) are ``judgeflow.formats``.

Messages speak the user's language: the CLI flag and the config key, never a Python name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from judgeflow.errors import ConfigError


class InputError(ConfigError):
    """A source that cannot be read at all, or whose columns cannot be mapped.

    Raised once per source with a message naming the file and what was expected/found; rows that
    are merely invalid never raise, they go to quarantine. A user's mistake (``UserError``): the
    command line prints it with where (``input.uri``) and how to fix it; ``str()`` is the message
    alone, as the callers that quote it inside their own messages expect.
    """

    def __init__(self, what: str) -> None:
        super().__init__(what, "input.uri", "fix the file or input.columns; `judgeflow validate FILE` shows what it holds")

    def __str__(self) -> str:
        return self.what


# First alias present in the source wins; order = most specific first.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "row_id"),
    "instruction": ("instruction", "prompt"),
    "responses": ("responses", "generations"),
    "models": ("models", "generation_models", "model_names"),
    "reference": ("reference_answer", "reference", "ref", "answer"),
    "metadata": ("metadata",),
    "response_a": ("response_a",),
    "response_b": ("response_b",),
    "model_a": ("model_a",),
    "model_b": ("model_b",),
}


class ColumnMapping(BaseModel):
    """Explicit source column for a field; ``None`` means "find it through the aliases".

    Example: ``ColumnMapping(instruction="question", responses="answers")``, which is
    ``--column instruction=question --column responses=answers`` on the CLI.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    instruction: str | None = None
    responses: str | None = None
    models: str | None = None
    reference: str | None = None
    metadata: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    model_a: str | None = None
    model_b: str | None = None


class ResolvedColumns(BaseModel):
    """The source column chosen for each field (``None``: the source has no such column).

    Either ``responses`` (a list column) or both ``response_a`` and ``response_b`` are set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    instruction: str
    responses: str | None = None
    models: str | None = None
    reference: str | None = None
    metadata: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    model_a: str | None = None
    model_b: str | None = None

    @property
    def pairwise(self) -> bool:
        """True when candidates come from ``response_a``/``response_b`` columns."""
        return self.responses is None


def resolve_columns(
    available: Iterable[str], source: str, mapping: ColumnMapping | None = None
) -> ResolvedColumns:
    """Pick a source column per field, or raise ``InputError`` saying what was expected/found.

    An explicit mapping entry must name an existing column (a typo should fail loudly, not fall
    back to an alias silently).
    """
    present = list(dict.fromkeys(available))
    present_set = set(present)
    explicit = (mapping or ColumnMapping()).model_dump()
    chosen: dict[str, str | None] = {}
    for field, aliases in ALIASES.items():
        wanted = explicit.get(field)
        if wanted is not None:
            if wanted not in present_set:
                raise InputError(
                    f"{source}: --column {field}={wanted} (input.columns) names a column the "
                    f"source does not have (found: {_show(present)})"
                )
            chosen[field] = wanted
            continue
        chosen[field] = next((a for a in aliases if a in present_set), None)

    if chosen["instruction"] is None:
        raise InputError(
            f"{source}: no instruction column; expected one of {_show(ALIASES['instruction'])} "
            f"(found: {_show(present)}); name yours with --column instruction=COLUMN "
            "(input.columns in a config)"
        )
    has_pair = chosen["response_a"] is not None and chosen["response_b"] is not None
    if chosen["responses"] is None and not has_pair:
        raise InputError(
            f"{source}: no candidate responses; expected a list column "
            f"{_show(ALIASES['responses'])}, both 'response_a' and 'response_b', or a known "
            f"dataset format (found: {_show(present)}); name yours with --column "
            "responses=COLUMN (input.columns in a config) or pick a layout with --format "
            "ultrafeedback|preference|messages|... (input.format)"
        )
    if chosen["responses"] is not None:
        # A list column wins; pairwise columns are then ordinary extra columns.
        chosen.update(response_a=None, response_b=None, model_a=None, model_b=None)
    return ResolvedColumns(**chosen)  # type: ignore[arg-type]


FIELDS = tuple(ColumnMapping.model_fields)


def check_fields(fields: Iterable[str], where: str) -> None:
    """Unknown logical fields in a column mapping: one error naming them and the known ones."""
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], FIELDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"{where}: unknown field {', '.join(repr(f) for f in unknown)}; {hint}fields are {', '.join(FIELDS)}"
        )


def _show(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "") if names else "none"
