"""Dataset formats: the preference-data layouts people have, recognised or named with ``--format``.

judgeflow judges rows of (instruction, candidate responses). Public datasets come in a few other
shapes, and asking a data engineer to rewrite them first is the wrong first hour:

* ``ultrafeedback``: ``instruction`` + ``completions: [{model, response, annotations, ...}]``;
* ``preference``: ``prompt`` / ``chosen`` / ``rejected``, as plain strings, as HH-RLHF
  transcripts (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``, no ``prompt``), or as TRL's
  conversational lists of ``{role, content}`` (with or without a ``prompt``), which also covers
  UltraFeedback-binarized and judgeflow's own ``pairs.parquet``;
* ``messages``: OpenAI-style chat rows; the last user message is the instruction and the
  assistant reply after it the one candidate;
* ``distilabel`` (``instruction`` + ``generations``), ``openpo`` (``prompt`` + ``responses``),
  ``pairwise`` (``response_a`` / ``response_b``) and ``judgeflow``'s own rows, which the column
  aliases of ``judgeflow.columns`` already read.

A format is either a set of default column choices, or a *conversion*: polars expressions over
the canonical JSON text of each row that put the instruction, responses and models under private
keys of the same text, so the ordinary decoding and validation of ``judgeflow.loading`` run
unchanged. A row a conversion cannot read gets a reason naming the source field, and is
quarantined like any other bad row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import polars as pl

from judgeflow.columns import ALIASES, ColumnMapping, InputError
from judgeflow.json_text import decode_isolating, json_path, value_kinds

FILE_TYPES = ("jsonl", "parquet", "csv")
FILE_TYPE_ALIASES = {"json": "jsonl", "ndjson": "jsonl", "pq": "parquet"}
# Private keys a conversion adds to a row's canonical JSON (never in a user's data).
INSTRUCTION_KEY, RESPONSES_KEY, MODELS_KEY, ID_KEY = "__jf_instruction", "__jf_responses", "__jf_models", "__jf_id"
METADATA_KEY = "__jf_metadata"
# What an UltraFeedback completion says about itself besides its text: kept in the row's metadata.
RATING_FIELDS = ("model", "overall_score", "fine-grained_score", "annotations", "critique")
_MESSAGES = pl.List(pl.Struct({"role": pl.String(), "content": pl.String()}))
_NOT_MESSAGES = "must be a string or a list of {role, content} messages"


@dataclass(frozen=True)
class Converted:
    """Records whose ``canon`` gained the private keys, plus ``_fmt_field``/``_fmt_problem``."""

    records: pl.DataFrame
    mapping: dict[str, str]
    labels: dict[str, str]


Converter = Callable[[pl.DataFrame, list[str], ColumnMapping], Converted]


@dataclass(frozen=True)
class DatasetFormat:
    """One layout: the columns it needs (each a tuple of alternatives) and how it is read."""

    name: str
    needs: tuple[tuple[str, ...], ...]
    mapping: dict[str, str] = field(default_factory=dict)
    convert: Converter | None = None

    def missing(self, available: Iterable[str], mapping: ColumnMapping) -> list[str]:
        """The needed columns the source lacks (an explicit ``--column`` counts as present)."""
        present = set(available) | _mapped_fields(mapping)
        return [" or ".join(repr(c) for c in group) for group in self.needs if not present & set(group)]


def _mapped_fields(mapping: ColumnMapping) -> set[str]:
    """Field names a user's ``--column FIELD=SOURCE`` supplies, as if the source had them."""
    return {f for f, v in mapping.model_dump().items() if v is not None}


# --------------------------------------------------------------------------------- conversions


def _role_content(messages: pl.Expr, role: str, *, last: bool = True) -> pl.Expr:
    """Content of the last (or first) message with ``role`` in a list of {role, content}."""
    picked = messages.list.eval(
        pl.element().struct.field("content").filter(pl.element().struct.field("role") == role)
    )
    return picked.list.last() if last else picked.list.first()


def _hh_reply(text: pl.Expr) -> pl.Expr:
    """HH-RLHF: the text after the last ``\\n\\nAssistant:``."""
    return text.str.extract(r"(?s)^.*\n\nAssistant:(.*)$", 1).str.strip_chars()


def _hh_context(text: pl.Expr) -> pl.Expr:
    """HH-RLHF: the dialogue before the last ``\\n\\nAssistant:``; one human turn is just its text."""
    before = pl.when(text.str.contains("\n\nAssistant:", literal=True)).then(
        text.str.extract(r"(?s)^(.*)\n\nAssistant:", 1)
    ).otherwise(text)
    one_turn = before.str.count_matches(r"(?:^|\n\n)Human:") == 1
    return (
        pl.when(one_turn).then(before.str.replace(r"^\s*Human:", "")).otherwise(before).str.strip_chars()
    )


def _is_hh(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars_start().str.starts_with("Human:") & text.str.contains(
        "\n\nAssistant:", literal=True
    )


def _typed(frame: pl.DataFrame, key: str, prefix: str) -> pl.DataFrame:
    """Columns ``{prefix}_kind``, ``_text`` (string value or list JSON) and ``_msgs`` (decoded
    message list, null where not one) for top-level ``key``."""
    kinds = value_kinds(frame, key)
    frame = frame.with_columns(
        kinds.alias(f"{prefix}_kind"),
        pl.col("canon").str.json_path_match(json_path(key)).alias(f"{prefix}_text"),
    )
    as_list = frame.select(pl.when(pl.col(f"{prefix}_kind") == "list").then(pl.col(f"{prefix}_text"))).to_series()
    msgs, failed = decode_isolating(as_list, _MESSAGES)
    return frame.with_columns(msgs.alias(f"{prefix}_msgs"), failed.alias(f"{prefix}_bad"))


def _first_problem(checks: list[tuple[str, pl.Expr, str | pl.Expr]]) -> tuple[pl.Expr, pl.Expr]:
    """(field, reason) of the first true check, in order; null when none holds."""
    field_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    reason_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, cond, why in reversed(checks):
        why_expr = pl.lit(why) if isinstance(why, str) else why
        field_expr = pl.when(cond.fill_null(False)).then(pl.lit(name)).otherwise(field_expr)
        reason_expr = pl.when(cond.fill_null(False)).then(why_expr).otherwise(reason_expr)
    return field_expr, reason_expr


def _with_private_keys(frame: pl.DataFrame, values: dict[str, pl.Expr]) -> pl.DataFrame:
    """Prepend ``values`` (as JSON) to every object row's canonical text."""
    prefix = pl.struct(**values).struct.json_encode().str.strip_suffix("}")
    canon = pl.col("canon")
    rest = pl.when(canon == "{}").then(pl.lit("}")).otherwise(pl.lit(",") + canon.str.strip_prefix("{"))
    return frame.with_columns(
        pl.when(canon.str.starts_with("{")).then(prefix + rest).otherwise(canon).alias("canon")
    )


def _response(prefix: str, key: str) -> tuple[pl.Expr, list[tuple[str, pl.Expr, str]]]:
    """A chosen/rejected response and the checks that explain a missing one."""
    kind, text, msgs = pl.col(f"{prefix}_kind"), pl.col(f"{prefix}_text"), pl.col(f"{prefix}_msgs")
    value = (
        pl.when(kind == "string").then(pl.when(_is_hh(text)).then(_hh_reply(text)).otherwise(text))
        .when(kind == "list").then(_role_content(msgs, "assistant"))
    )
    checks = [
        ("responses", kind.is_null() | (kind == "null"), f"field '{key}' is missing"),
        ("responses", (kind == "other") | pl.col(f"{prefix}_bad"), f"field '{key}' {_NOT_MESSAGES}"),
        ("responses", value.is_null(), f"field '{key}' has no assistant message"),
        ("responses", value.str.strip_chars().str.len_chars() == 0, f"field '{key}' is empty"),
    ]
    return value, checks


def _preference(records: pl.DataFrame, available: list[str], mapping: ColumnMapping) -> Converted:
    """prompt/chosen/rejected as strings, HH-RLHF transcripts or {role, content} lists."""
    prompt_key = mapping.instruction or "prompt"
    frame = _typed(records, prompt_key, "_p")
    frame = _typed(frame, "chosen", "_c")
    frame = _typed(frame, "rejected", "_r")
    p_kind, p_text, p_msgs = pl.col("_p_kind"), pl.col("_p_text"), pl.col("_p_msgs")
    c_kind, c_text = pl.col("_c_kind"), pl.col("_c_text")
    no_prompt = p_kind.is_null() | (p_kind == "null")
    instruction = (
        pl.when(p_kind == "string").then(pl.when(_is_hh(p_text)).then(_hh_context(p_text)).otherwise(p_text))
        .when(p_kind == "list").then(_role_content(p_msgs, "user"))
        .when(no_prompt & (c_kind == "list")).then(_role_content(pl.col("_c_msgs"), "user"))
        .when(no_prompt & (c_kind == "string") & _is_hh(c_text)).then(_hh_context(c_text))
    )
    chosen, chosen_checks = _response("_c", "chosen")
    rejected, rejected_checks = _response("_r", "rejected")
    checks = [
        ("instruction", (p_kind == "other") | pl.col("_p_bad"), f"field '{prompt_key}' {_NOT_MESSAGES}"),
        ("instruction", (p_kind == "list") & instruction.is_null(), f"field '{prompt_key}' has no user message"),
        ("instruction", no_prompt & (c_kind == "list") & instruction.is_null(),
         f"field '{prompt_key}' is missing and 'chosen' has no user message"),
        ("instruction", no_prompt & instruction.is_null(),
         f"field '{prompt_key}' is missing ('chosen' and 'rejected' hold only the responses; "
         "HH-RLHF transcripts start with 'Human:')"),
        *chosen_checks,
        *rejected_checks,
    ]
    problem_field, problem = _first_problem(checks)
    values = {INSTRUCTION_KEY: instruction, RESPONSES_KEY: pl.concat_list(chosen, rejected)}
    new_mapping = {"instruction": INSTRUCTION_KEY, "responses": RESPONSES_KEY}
    if "chosen_model" in available and "rejected_model" in available:
        values[MODELS_KEY] = pl.concat_list(*(_scalar_text(k) for k in ("chosen_model", "rejected_model")))
        new_mapping["models"] = MODELS_KEY
    pair_id = _pair_id(available, mapping)
    if pair_id is not None:
        values[ID_KEY] = pair_id
        new_mapping["id"] = ID_KEY
    frame = frame.with_columns(
        pl.when(problem.is_null()).then(pl.struct(**values)).alias("_values"),
        problem_field.alias("_fmt_field"),
        problem.alias("_fmt_problem"),
    )
    frame = _with_private_keys(frame, {k: pl.col("_values").struct.field(k) for k in values})
    return Converted(
        frame.select(*records.columns, "_fmt_field", "_fmt_problem"),
        new_mapping,
        {"instruction": prompt_key, "responses": "chosen/rejected"},
    )


def _scalar_text(key: str) -> pl.Expr:
    return pl.col("canon").str.json_path_match(json_path(key))


def _pair_id(available: list[str], mapping: ColumnMapping) -> pl.Expr | None:
    """judgeflow's pairs.parquet holds several pairs of one row: ``row_id:chosen-rejected``."""
    if not {"chosen_index", "rejected_index"} <= set(available):
        return None
    id_key = mapping.id or next((a for a in ALIASES["id"] if a in available), None)
    if id_key is None:
        return None
    return pl.concat_str(
        [_scalar_text(id_key), pl.lit(":"), _scalar_text("chosen_index"), pl.lit("-"), _scalar_text("rejected_index")]
    )


def _messages(records: pl.DataFrame, available: list[str], mapping: ColumnMapping) -> Converted:
    """OpenAI chat rows: the last user message and the assistant reply after it."""
    del available, mapping
    frame = _typed(records, "messages", "_m")
    kind, msgs = pl.col("_m_kind"), pl.col("_m_msgs")
    instruction = _role_content(msgs, "user")
    after_last_user = msgs.list.reverse().list.eval(
        pl.element().filter((pl.element().struct.field("role") == "user").cum_sum() == 0)
    )
    reply = _role_content(after_last_user, "assistant")
    checks = [
        ("instruction", kind.is_null() | (kind == "null"), "field 'messages' is missing"),
        ("instruction", (kind != "list") | pl.col("_m_bad"), "field 'messages' must be a list of {role, content} messages"),
        ("instruction", instruction.is_null(), "field 'messages' has no user message"),
        ("instruction", instruction.str.strip_chars().str.len_chars() == 0, "field 'messages': the last user message is empty"),
        ("responses", reply.is_null(), "field 'messages' has no assistant reply after the last user message"),
        ("responses", reply.str.strip_chars().str.len_chars() == 0, "field 'messages': the assistant reply is empty"),
    ]
    problem_field, problem = _first_problem(checks)
    frame = frame.with_columns(
        pl.when(problem.is_null()).then(pl.struct(instruction.alias("i"), pl.concat_list(reply).alias("r"))).alias("_values"),
        problem_field.alias("_fmt_field"),
        problem.alias("_fmt_problem"),
    )
    frame = _with_private_keys(
        frame, {INSTRUCTION_KEY: pl.col("_values").struct.field("i"), RESPONSES_KEY: pl.col("_values").struct.field("r")}
    )
    return Converted(
        frame.select(*records.columns, "_fmt_field", "_fmt_problem"),
        {"instruction": INSTRUCTION_KEY, "responses": RESPONSES_KEY},
        {"instruction": "messages", "responses": "messages"},
    )


def _ultrafeedback(records: pl.DataFrame, available: list[str], mapping: ColumnMapping) -> Converted:
    """UltraFeedback: ``completions`` are the responses (read by the loader's candidate objects);
    each completion's ratings (``RATING_FIELDS`` it has, in response order) become the row's
    ``metadata``: ``{"ratings": [{model, overall_score, fine-grained_score, annotations,
    critique}, ...]}`` (not under ``completions``: the row's text must name its responses column
    once). A source with a metadata column of its own keeps it as it is.

    The completions are decoded with a type inferred over the whole file: a field whose type
    differs between rows (a score that is sometimes "N/A") is kept as text, a key some
    completions lack is null; a file whose completions do not decode at all keeps no ratings.
    """
    chosen = {k: v for k, v in (("instruction", "instruction"), ("responses", "completions"))
              if v in available and getattr(mapping, k) is None}
    key = mapping.responses or "completions"
    if mapping.metadata is not None or any(a in available for a in ALIASES["metadata"]):
        return Converted(records, chosen, {})
    texts = records.select(pl.col("canon").str.json_path_match(json_path(key))).to_series()
    texts = pl.select(pl.when(texts.str.starts_with("[{")).then(texts)).to_series()
    try:
        decoded = texts.str.json_decode(infer_schema_length=None)
    except pl.exceptions.PolarsError:
        return Converted(records, chosen, {})
    inner = decoded.dtype.inner if isinstance(decoded.dtype, pl.List) else None  # type: ignore[union-attr]
    kept = [f for f in RATING_FIELDS if isinstance(inner, pl.Struct) and f in {x.name for x in inner.fields}]
    if not kept:
        return Converted(records, chosen, {})
    ratings = decoded.list.eval(pl.struct(*(pl.element().struct.field(f) for f in kept)))
    frame = _with_private_keys(
        records.with_columns(ratings.alias("_ratings")), {METADATA_KEY: pl.struct(pl.col("_ratings").alias("ratings"))}
    )
    return Converted(frame.select(*records.columns), {**chosen, "metadata": METADATA_KEY}, {"metadata": key})


# ------------------------------------------------------------------------------------ registry

FORMATS: dict[str, DatasetFormat] = {
    f.name: f
    for f in (
        DatasetFormat("judgeflow", (("instruction",), ("responses",)), {"instruction": "instruction", "responses": "responses"}),
        DatasetFormat("openpo", (("prompt",), ("responses",)), {"instruction": "prompt", "responses": "responses"}),
        DatasetFormat("distilabel", (("instruction",), ("generations",)), {"instruction": "instruction", "responses": "generations"}),
        DatasetFormat("pairwise", (("instruction", "prompt"), ("response_a",), ("response_b",)),
                      {"response_a": "response_a", "response_b": "response_b"}),
        DatasetFormat("ultrafeedback", (("instruction",), ("completions",)), {"instruction": "instruction", "responses": "completions"},
                      convert=_ultrafeedback),
        DatasetFormat("preference", (("chosen",), ("rejected",)), convert=_preference),
        DatasetFormat("messages", (("messages",),), convert=_messages),
    )
}
FORMAT_ALIASES = {"hh-rlhf": "preference", "trl": "preference"}
DATASET_FORMATS = (*FORMATS, *FORMAT_ALIASES)
FORMAT_CHOICES = (*FILE_TYPES, *DATASET_FORMATS)


# The source columns behind a conversion's private keys, as a summary or log names them.
_PRIVATE_SOURCES: dict[str, dict[str, str]] = {
    "preference": {
        INSTRUCTION_KEY: "prompt", RESPONSES_KEY: "chosen/rejected", MODELS_KEY: "chosen_model/rejected_model",
        ID_KEY: "id:chosen_index-rejected_index",
    },
    "messages": {INSTRUCTION_KEY: "messages", RESPONSES_KEY: "messages"},
    "ultrafeedback": {METADATA_KEY: "completions"},
}


def shown_columns(columns: dict[str, str | None], dataset_format: str | None) -> dict[str, str]:
    """The fields read and the user's columns they came from (``ResolvedColumns`` as a dict):
    never a conversion's private ``__jf_*`` key, and no field the source does not have."""
    sources = _PRIVATE_SOURCES.get(FORMAT_ALIASES.get(dataset_format or "", dataset_format or ""), {})
    return {
        fld: sources.get(col, f"{dataset_format} format") if col.startswith("__jf_") else col
        for fld, col in columns.items()
        if col is not None
    }


def split_format(value: str | None, source: str) -> tuple[str | None, DatasetFormat | None]:
    """(file type, dataset format) named by one ``--format`` / ``input.format`` value."""
    if value is None or not value.strip():
        return None, None
    name = value.strip().lower().lstrip(".")
    name = FILE_TYPE_ALIASES.get(name, name)
    if name in FILE_TYPES:
        return name, None
    name = FORMAT_ALIASES.get(name, name)
    if name in FORMATS:
        return None, FORMATS[name]
    raise InputError(
        f"{source}: unknown --format {value!r} (input.format in a config); use a file type "
        f"({', '.join(FILE_TYPES)}) or a dataset format ({', '.join(DATASET_FORMATS)})"
    )


def detect(available: Iterable[str], mapping: ColumnMapping | None = None) -> DatasetFormat | None:
    """The format the columns of the first rows say, most specific first; None if none fits.

    A list column of responses wins over ``chosen``/``rejected`` and ``messages`` (extra columns
    of a native row); ``chosen``/``rejected`` win over ``messages`` (UltraFeedback-binarized has
    both, and ``messages`` there is only the chosen conversation).
    """
    mapping = mapping or ColumnMapping()
    cols = set(available) | _mapped_fields(mapping)
    if "responses" not in cols and "generations" not in cols and {"instruction", "completions"} <= cols:
        return FORMATS["ultrafeedback"]
    if "responses" in cols:
        return FORMATS["judgeflow" if "instruction" in cols or "prompt" not in cols else "openpo"]
    if "generations" in cols:
        return FORMATS["distilabel"]
    if {"chosen", "rejected"} <= cols and mapping.response_a is None:
        return FORMATS["preference"]
    if "messages" in cols:
        return FORMATS["messages"]
    if {"response_a", "response_b"} <= cols:
        return FORMATS["pairwise"]
    return None


def require(fmt: DatasetFormat, available: list[str], mapping: ColumnMapping, source: str, stated: bool) -> None:
    """A stated format whose columns are not there is one clear error naming flag and columns."""
    missing = fmt.missing(available, mapping)
    if missing and stated:
        found = ", ".join(repr(c) for c in available[:20]) or "none"
        raise InputError(
            f"{source}: --format {fmt.name} (input.format) expects the column(s) "
            f"{', '.join(missing)}, but the first rows have: {found}. Drop --format to have the "
            "format recognised, or map columns with --column FIELD=COLUMN (input.columns)"
        )


def defaults(fmt: DatasetFormat, mapping: ColumnMapping, available: Iterable[str]) -> ColumnMapping:
    """``mapping`` with the format's column choices filled in where the user named none."""
    present = set(available)
    chosen = {k: v for k, v in fmt.mapping.items() if v in present}
    return ColumnMapping(**{**chosen, **mapping.model_dump(exclude_none=True)})
