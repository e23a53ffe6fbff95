"""Load input rows from JSONL, Parquet or CSV (local or ``s3://``) into ``ROWS_SCHEMA``.

Every source is reduced to one text column of *canonical JSON per row*: JSONL lines are
canonicalised by polars' JSON path engine (``json_path_match("$")``, which also tells which
lines are not JSON at all), Parquet and CSV rows are encoded with ``struct.json_encode``. Fields
are then pulled out with polars expressions, so a file is never parsed row by row in Python:

* a value's JSON *type* is read from the canonical text (``"instruction":"`` means a string),
  and only rows where that is ambiguous (the same key nested deeper with another type) are
  checked individually;
* lists are classified with an exact regex over the compact JSON (list of strings) or decoded
  with a schema, bisecting only around the rows that fail (list of ``{text, model}`` objects);
* invalid UTF-8 is found in the raw bytes and mapped to line numbers, so one bad byte sets
  aside one line, not the file;
* text with a UTF-16/UTF-32 byte-order mark is decoded first (``judgeflow.text_encoding``); a
  file with no JSON object on any line is "not JSON", not a file without columns;
* an empty file, or one holding only blank lines or a CSV header, is zero rows with a note, the
  same for every text format.

The rows' layout (UltraFeedback, chosen/rejected pairs, chat messages, distilabel, ...) is
recognised from the columns of the first rows or stated with ``format`` (``judgeflow.formats``);
a layout that needs more than a column choice is rewritten into the same canonical text first.

Decoding problems (bad UTF-8, unparseable JSON, wrong types) and content problems (empty fields,
oversize text, duplicate ids; see ``judgeflow.validation``) end in one quarantine frame.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl
from pydantic import BaseModel, ConfigDict

from judgeflow.columns import ALIASES, ColumnMapping, InputError, ResolvedColumns, resolve_columns
from judgeflow.formats import FILE_TYPES, DatasetFormat, defaults, detect, require, split_format
from judgeflow.json_text import decode_isolating as _decode_isolating
from judgeflow.json_text import json_path as _path
from judgeflow.json_text import key_pat as _key_pat
from judgeflow.json_text import resolve_ambiguous as _resolve_ambiguous
from judgeflow.schemas import QUARANTINE_SCHEMA, ROWS_SCHEMA, content_hash
from judgeflow.storage.s3 import S3Config, is_s3_uri, read_bytes
from judgeflow.text_encoding import to_utf8
from judgeflow.validation import DEFAULT_MAX_TEXT_CHARS, validate_decoded

__all__ = [
    "ColumnMapping",
    "InputError",
    "LoadCounts",
    "LoadResult",
    "content_hashes",
    "detect_format",
    "load_objects",
    "load_rows",
]

FormatName = Literal["jsonl", "parquet", "csv"]
_SUFFIXES: dict[str, FormatName] = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
# A compact JSON list of strings (``["a","b\"c"]``), and the same with nulls allowed.
_STR = r'"(?:[^"\\]|\\.)*"'
_STR_LIST = rf"^\[(?:{_STR}(?:,{_STR})*)?\]$"
_STR_OR_NULL = rf"(?:{_STR}|null)"
_STR_OR_NULL_LIST = rf"^\[(?:{_STR_OR_NULL}(?:,{_STR_OR_NULL})*)?\]$"
# A candidate object: its text under "text" (judgeflow) or "response" (UltraFeedback's completions).
_CANDIDATE = pl.Struct({"text": pl.String(), "response": pl.String(), "model": pl.String()})
NO_ROWS = "the file holds no rows"


class LoadCounts(BaseModel):
    """``rows_in == rows_valid + rows_quarantined``, always."""

    model_config = ConfigDict(extra="forbid")

    rows_in: int
    rows_valid: int
    rows_quarantined: int


@dataclass
class LoadResult:
    """Valid rows (exactly ``ROWS_SCHEMA``), quarantined rows (exactly ``QUARANTINE_SCHEMA``).

    ``notes`` say what a user should know about the file as a whole (it was decoded from
    UTF-16, it holds no rows); the CLI and the build log print them. ``format`` is the file type,
    ``dataset_format`` the layout the rows were read as (``judgeflow.formats``), None when the
    columns were mapped by hand into no known layout.
    """

    rows: pl.DataFrame
    quarantine: pl.DataFrame
    counts: LoadCounts
    source: str
    format: FormatName
    columns: ResolvedColumns | None = None
    notes: list[str] = field(default_factory=list)
    dataset_format: str | None = None


def detect_format(source: str | Path, format: str | None = None) -> tuple[FormatName, bool]:
    """(file type, gzipped) from a stated file type or the name (``.jsonl.gz`` -> jsonl, True).

    ``format`` may also name a dataset format (``ultrafeedback``); the file type then comes from
    the name.
    """
    name = str(source).lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    file_type, _ = split_format(format, str(source))
    if file_type is not None:
        return file_type, gz  # type: ignore[return-value]
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt, gz
    raise InputError(
        f"{source}: cannot tell the file type from the name; expected one of "
        f"{', '.join(_SUFFIXES)} (optionally .gz for jsonl/csv), or give it with --format "
        f"{'|'.join(FILE_TYPES)} (input.format in a config)"
    )


def load_rows(
    source: str | Path,
    *,
    format: str | None = None,
    mapping: ColumnMapping | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    s3: S3Config | None = None,
) -> LoadResult:
    """Load and validate one source. Invalid rows are quarantined; an unusable file raises.

    ``source`` is a local path or an ``s3://bucket/key`` URI (read with ``s3``'s endpoint and
    credentials). ``format`` is a file type (jsonl, parquet, csv) or a dataset format
    (``judgeflow.formats``: ultrafeedback, preference, messages, ...); without it both are
    recognised, from the name and from the first rows. Raises ``InputError`` (one, with a clear
    message) when the file cannot be read or its columns cannot be mapped.
    """
    fmt, gz = detect_format(source, format)
    return _load_data(str(source), _read(source, s3), fmt, gz, format, mapping, max_text_chars)


def load_objects(
    objects: list[Any],
    source: str,
    *,
    format: str | None = None,
    mapping: ColumnMapping | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> LoadResult:
    """Load in-memory JSON values (one per row) exactly as a JSONL file holding them."""
    data = b"\n".join(orjson.dumps(o, default=str) for o in objects) + b"\n"
    return _load_data(source, data, "jsonl", False, format, mapping, max_text_chars)


def _load_data(
    name: str, data: bytes, fmt: FormatName, gz: bool, format: str | None,
    mapping: ColumnMapping | None, max_text_chars: int,
) -> LoadResult:
    if gz:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{name}: not a readable gzip file ({exc})") from exc
    notes: list[str] = []
    if fmt != "parquet":
        data, decoded_from = to_utf8(name, data)
        notes += [decoded_from] if decoded_from else []
    records, available = _records(name, fmt, data)
    if records.height == 0:
        return _empty_result(name, fmt, [*notes, NO_ROWS])
    records, columns, labels, layout = _layout(name, records, available, format, mapping or ColumnMapping())
    decoded = _decode(records, columns, lists_as_text=(fmt == "csv"), labels=labels)
    decoded = decoded.with_columns(content_hashes(decoded).alias("content_hash"))
    rows, quarantine = validate_decoded(decoded, name, max_text_chars=max_text_chars, labels=labels)
    counts = LoadCounts(
        rows_in=records.height, rows_valid=rows.height, rows_quarantined=quarantine.height
    )
    if counts.rows_in != counts.rows_valid + counts.rows_quarantined:  # never silently lose a row
        raise AssertionError(f"{name}: row accounting broken: {counts}")
    return LoadResult(rows, quarantine, counts, name, fmt, columns, notes, layout)


def _layout(
    name: str, records: pl.DataFrame, available: list[str], format: str | None, mapping: ColumnMapping
) -> tuple[pl.DataFrame, ResolvedColumns, dict[str, str], str | None]:
    """(records, resolved columns, source names for reasons, dataset format name).

    The stated dataset format, else the one the first rows' columns say (``formats.detect``);
    a conversion format rewrites the records, the others only choose columns.
    """
    _, stated = split_format(format, name)
    layout: DatasetFormat | None = stated or detect(available, mapping)
    if layout is not None:
        require(layout, available, mapping, name, stated=stated is not None)
    labels: dict[str, str] = {}
    if layout is not None and layout.convert is not None:
        converted = layout.convert(records, available, mapping)
        records = converted.records
        mapping = ColumnMapping(**{**mapping.model_dump(exclude_none=True), **converted.mapping})
        available = [*available, *converted.mapping.values()]
        labels = dict(converted.labels)
    elif layout is not None:
        mapping = defaults(layout, mapping, available)
    columns = resolve_columns(available, name, mapping)
    for fld in ("instruction", "responses", "reference", "metadata"):
        labels.setdefault(fld, getattr(columns, fld) or fld)
    return records, columns, labels, layout.name if layout is not None else None


def content_hashes(frame: pl.DataFrame) -> pl.Series:
    """``judgeflow.schemas.content_hash`` over a frame with instruction/responses/reference.

    The twin is the *same* function applied per row (C-speed orjson + hashlib inside), so the
    two can never disagree; it is the only per-row Python step and runs once per load.
    """
    values = frame.select("instruction", "responses", "reference")
    hashes = [
        content_hash(i, r, ref) for i, r, ref in zip(*(values[c].to_list() for c in values.columns))
    ]
    return pl.Series("content_hash", hashes, dtype=pl.String)


# ---------------------------------------------------------------------------------------------
# reading: bytes -> one canonical JSON text per record
# ---------------------------------------------------------------------------------------------


def _read(source: str | Path, s3: S3Config | None) -> bytes:
    try:
        if is_s3_uri(source):
            return read_bytes(str(source), s3)
        return Path(source).read_bytes()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read failure is one clear InputError
        raise InputError(f"{source}: cannot read ({type(exc).__name__}: {exc})") from exc


def _records(name: str, fmt: FormatName, data: bytes) -> tuple[pl.DataFrame, list[str]]:
    """Frame of (source_index, raw, canon, bad_utf8) plus the column names found."""
    if fmt == "jsonl":
        stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
        if stripped.startswith(b"["):  # a .json file holding one JSON array, not JSON lines
            try:
                frame = pl.read_json(stripped, infer_schema_length=None)
            except Exception as exc:  # noqa: BLE001
                raise _json_array_error(name, stripped, exc) from None
            return _frame_records(frame), list(frame.columns)
        return _jsonl_records(name, data)
    if fmt == "parquet":
        try:
            frame = pl.read_parquet(data)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{name}: not a readable Parquet file ({exc})") from exc
        return _frame_records(frame), list(frame.columns)
    return _csv_records(name, data)


def _jsonl_records(name: str, data: bytes) -> tuple[pl.DataFrame, list[str]]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data, bad_lines = _repair_utf8(data)
    try:
        lines = pl.read_lines(data, name="raw", row_index_name="source_index")
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{name}: cannot split into lines ({exc})") from exc
    lines = lines.with_columns(
        pl.col("source_index").cast(pl.Int64),
        pl.col("source_index").is_in(sorted(bad_lines)).alias("bad_utf8"),
    ).filter(pl.col("raw").str.strip_chars().str.len_bytes() > 0)  # blank lines are not rows
    lines = lines.with_columns(
        pl.when(~pl.col("bad_utf8")).then(pl.col("raw").str.json_path_match("$")).alias("canon")
    )
    _require_some_object(name, lines)
    available = _jsonl_keys(lines)
    return lines.select("source_index", "raw", "canon", "bad_utf8"), available


def _require_some_object(name: str, lines: pl.DataFrame) -> None:
    """Raise "not JSON" when no line holds a JSON object (random bytes, a binary, plain text).

    One bad line among good ones is quarantined like any bad row; a file with no object at all
    has nothing to quarantine *against*, and "no instruction column (found: none)" would send
    the user looking for a column mapping instead of at the file.
    """
    if lines.height == 0 or lines.select(pl.col("canon").str.starts_with("{").any()).item():
        return
    first = lines.row(0, named=True)
    line = first["source_index"] + 1
    if first["bad_utf8"]:
        raise InputError(
            f"{name}: not JSON: line {line} holds bytes that are not UTF-8 text and no line holds "
            "a JSON object (a binary file?); expected one JSON object per line"
        )
    if first["canon"] is None:
        raise InputError(
            f"{name}: not JSON: line {line} does not parse as JSON and no line holds a JSON "
            "object; expected one JSON object per line"
        )
    kind = {"[": "array", '"': "string"}.get(first["canon"][:1], "number, boolean or null")
    raise InputError(
        f"{name}: no line holds a JSON object (line {line} is a JSON {kind}); "
        "expected one JSON object per line"
    )


def _json_array_error(name: str, data: bytes, exc: Exception) -> InputError:
    """Why a file starting with ``[`` is not a JSON array, with the line where it breaks."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data.count(b"\n", 0, bad.start) + 1
        return InputError(f"{name}: not JSON: starts with '[' but line {line} holds bytes that are not UTF-8 text")
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as bad:
        return InputError(f"{name}: not JSON: starts with '[' but {bad}")
    return InputError(f"{name}: not readable as a JSON array of objects ({_one_line(exc)})")


def _one_line(exc: BaseException) -> str:
    """The first line of a library's message (polars appends multi-line hints)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _jsonl_keys(lines: pl.DataFrame) -> list[str]:
    """Top-level keys seen in the first parseable lines, plus any known alias present anywhere."""
    sample = lines.filter(pl.col("canon").str.starts_with("{")).head(200)["canon"].to_list()
    keys: dict[str, None] = {}
    for text in sample:  # bounded sample, only to name the columns
        keys.update(dict.fromkeys(orjson.loads(text)))
    aliases = sorted({a for group in ALIASES.values() for a in group} - set(keys))
    if aliases:
        present = lines.select(
            pl.col("canon").str.contains(_key_pat(a), literal=True).any().alias(a) for a in aliases
        ).row(0, named=True)
        keys.update(dict.fromkeys(a for a, hit in present.items() if hit))
    return list(keys)


def _frame_records(frame: pl.DataFrame) -> pl.DataFrame:
    """Parquet/JSON-array rows as canonical JSON texts (``raw`` is the row's JSON too)."""
    if frame.width == 0:
        return pl.DataFrame(schema={"source_index": pl.Int64, "raw": pl.String, "canon": pl.String, "bad_utf8": pl.Boolean})
    safe = frame.with_columns(
        pl.col(c).cast(pl.String) for c, dt in frame.schema.items() if dt == pl.Binary or dt == pl.Object
    )
    encoded = safe.select(pl.struct(pl.all()).struct.json_encode().alias("canon"))
    return encoded.with_row_index("source_index").select(
        pl.col("source_index").cast(pl.Int64),
        pl.col("canon").alias("raw"),
        "canon",
        pl.lit(False).alias("bad_utf8"),
    )


def _csv_records(name: str, data: bytes) -> tuple[pl.DataFrame, list[str]]:
    """CSV rows (all cells text; list columns hold JSON arrays). Bad UTF-8 -> lossy + flagged."""
    lossy = False
    try:
        try:
            frame = pl.read_csv(data, infer_schema=False)
        except pl.exceptions.ComputeError as exc:
            if "utf" not in str(exc).lower():
                raise
            header = data.split(b"\n", 1)[0]
            try:
                header.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    f"{name}: not UTF-8 text: line 1 (the header) holds bytes that are not UTF-8 "
                    "(a binary file?); save it as UTF-8 CSV"
                ) from None
            lossy = True
            frame = pl.read_csv(data, infer_schema=False, encoding="utf8-lossy")
    except InputError:
        raise
    except pl.exceptions.NoDataError:  # empty, or blank lines only: zero rows, as for JSONL
        return _frame_records(pl.DataFrame()), []
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{name}: not a readable CSV file ({_one_line(exc)})") from None
    records = _frame_records(frame)
    if lossy:  # polars replaced the invalid bytes with U+FFFD: flag exactly those rows
        records = records.with_columns(pl.col("raw").str.contains("\ufffd", literal=True).alias("bad_utf8"))
    return records, list(frame.columns)


def _repair_utf8(data: bytes) -> tuple[bytes, set[int]]:
    """(valid UTF-8 bytes, 0-based line numbers that held invalid UTF-8).

    Clean files (the norm) cost one C-speed decode. Otherwise only the bad bytes are visited.
    """
    try:
        data.decode("utf-8")
        return data, set()
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="surrogateescape")
    bad: set[int] = set()
    line, last = 0, 0
    for match in re.finditer("[\udc80-\udcff]", text):
        line += text.count("\n", last, match.start())
        last = match.start()
        bad.add(line)
    return data.decode("utf-8", errors="replace").encode("utf-8"), bad


def _empty_result(name: str, fmt: FormatName, notes: list[str]) -> LoadResult:
    return LoadResult(
        pl.DataFrame(schema=ROWS_SCHEMA),
        pl.DataFrame(schema=QUARANTINE_SCHEMA),
        LoadCounts(rows_in=0, rows_valid=0, rows_quarantined=0),
        name,
        fmt,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# decoding: canonical JSON -> typed fields + the first decoding problem per row
# ---------------------------------------------------------------------------------------------


def _decode(
    records: pl.DataFrame, cols: ResolvedColumns, *, lists_as_text: bool, labels: dict[str, str] | None = None
) -> pl.DataFrame:
    """The "decoded" frame ``judgeflow.validation.validate_decoded`` expects.

    Columns: source_index, raw, id, instruction, responses, models, reference, metadata,
    problem_field, problem (first decoding problem, null when none).
    """
    canon = pl.col("canon")
    frame = records.with_columns(
        pl.when(pl.col("bad_utf8"))
        .then(pl.lit("line"))
        .when(canon.is_null())
        .then(pl.lit("line"))
        .when(~canon.str.starts_with("{"))
        .then(pl.lit("line"))
        .alias("problem_field"),
        pl.when(pl.col("bad_utf8"))
        .then(pl.lit("invalid UTF-8 bytes in the line"))
        .when(canon.is_null())
        .then(pl.lit("not valid JSON"))
        .when(~canon.str.starts_with("{"))
        .then(pl.lit("not a JSON object"))
        .alias("problem"),
    )
    if "_fmt_problem" in frame.columns:  # what a dataset-format conversion could not read
        frame = frame.with_columns(
            pl.coalesce("problem_field", "_fmt_field").alias("problem_field"),
            pl.coalesce("problem", "_fmt_problem").alias("problem"),
        )
    labels = labels or {}
    problems: list[tuple[str, pl.Series]] = []  # (field, reason per row or null), in priority

    frame, id_bad = _scalar(frame, cols.id, "id", label=cols.id, allow_any_scalar=True)
    problems.append(("id", id_bad))
    frame, instr_bad = _scalar(frame, cols.instruction, "instruction", label=labels.get("instruction", cols.instruction))
    problems.append(("instruction", instr_bad))

    if cols.responses is not None:
        frame, resp_bad = _candidates(frame, cols.responses, lists_as_text, labels.get("responses", cols.responses))
        problems.append(("responses", resp_bad))
    else:
        assert cols.response_a is not None and cols.response_b is not None
        frame, a_bad = _scalar(frame, cols.response_a, "_ra", label=cols.response_a)
        frame, b_bad = _scalar(frame, cols.response_b, "_rb", label=cols.response_b)
        problems += [("response_a", a_bad), ("response_b", b_bad)]
        frame = frame.with_columns(
            pl.when(pl.col("_ra").is_not_null() | pl.col("_rb").is_not_null())
            .then(pl.concat_list(pl.col("_ra").fill_null(""), pl.col("_rb").fill_null("")))
            .alias("responses"),
            pl.lit(None, dtype=pl.List(pl.String)).alias("_cand_models"),
        )
        problems += [
            ("response_a", _missing(frame, "_ra", cols.response_a)),
            ("response_b", _missing(frame, "_rb", cols.response_b)),
        ]

    if cols.models is not None:
        frame, models_bad = _string_list(frame, cols.models, "_models_col", lists_as_text, nulls_ok=True)
        problems.append(("models", models_bad))
    elif cols.model_a is not None or cols.model_b is not None:
        for src, out in ((cols.model_a, "_ma"), (cols.model_b, "_mb")):
            if src is None:
                frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(out))
            else:
                frame, bad = _scalar(frame, src, out, label=src)
                problems.append(("models", bad))
        frame = frame.with_columns(pl.concat_list("_ma", "_mb").alias("_models_col"))
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("_models_col"))

    frame, ref_bad = _scalar(frame, cols.reference, "reference", label=cols.reference)
    problems.append(("reference", ref_bad))
    frame, meta_bad = _metadata(frame, cols.metadata, lists_as_text)
    problems.append(("metadata", meta_bad))

    n_resp = pl.col("responses").list.len()
    models = (
        pl.when(pl.col("_cand_models").is_not_null())
        .then(pl.col("_cand_models"))
        .when(pl.col("_models_col").is_not_null())
        .then(pl.col("_models_col"))
        .otherwise(pl.lit(None, dtype=pl.String).repeat_by(n_resp.fill_null(0)))
    )
    frame = frame.with_columns(models.cast(pl.List(pl.String)).alias("models"))
    len_bad = pl.Series(
        frame.select(
            # an empty list of responses is its own (clearer) problem, found by validation
            pl.when(pl.col("responses").is_not_null() & (n_resp > 0) & (pl.col("models").list.len() != n_resp))
            .then(
                pl.format(
                    "field 'models' has {} entries but there are {} responses",
                    pl.col("models").list.len(),
                    n_resp,
                )
            )
        ).to_series()
    )
    problems.append(("models", len_bad))

    # First problem wins: line-level, then fields in the order above.
    field_expr = pl.col("problem_field")
    reason_expr = pl.col("problem")
    extra = pl.DataFrame({f"_p{i}": s for i, (_, s) in enumerate(problems)})
    frame = pl.concat([frame, extra], how="horizontal")
    for i, (fname, _) in enumerate(problems):
        col = pl.col(f"_p{i}")
        field_expr = pl.when(field_expr.is_null() & col.is_not_null()).then(pl.lit(fname)).otherwise(field_expr)
        reason_expr = pl.when(reason_expr.is_null() & col.is_not_null()).then(col).otherwise(reason_expr)
    frame = frame.with_columns(field_expr.alias("problem_field"), reason_expr.alias("problem"))
    return frame.select(
        "source_index",
        "raw",
        pl.col("id").cast(pl.String),
        pl.col("instruction").cast(pl.String),
        pl.col("responses").cast(pl.List(pl.String)),
        "models",
        pl.col("reference").cast(pl.String),
        pl.col("metadata").cast(pl.String),
        "problem_field",
        "problem",
    )


def _value_kind_counts(key: str, opener: str) -> tuple[pl.Expr, pl.Expr]:
    """(every occurrence of "key":, occurrences with the expected opener or null)."""
    pat = _key_pat(key)
    canon = pl.col("canon")
    total = canon.str.count_matches(pat, literal=True)
    ok = canon.str.count_matches(pat + opener, literal=True) + canon.str.count_matches(
        pat + "null", literal=True
    )
    return total, ok


def _scalar(
    frame: pl.DataFrame, key: str | None, out: str, *, label: str | None = None,
    allow_any_scalar: bool = False,
) -> tuple[pl.DataFrame, pl.Series]:
    """Extract a string field (``allow_any_scalar``: numbers/bools too, as text, e.g. ids)."""
    if key is None:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(out)), _none(frame)
    shown = label or key
    canon = pl.col("canon")
    pat = _key_pat(key)
    total = canon.str.count_matches(pat, literal=True)
    if allow_any_scalar:
        wrong = canon.str.count_matches(pat + "[", literal=True) + canon.str.count_matches(
            pat + "{", literal=True
        )
        ok = total - wrong
    else:
        _, ok = _value_kind_counts(key, '"')
    flags = frame.select(
        ((total == 1) & (ok == 0)).fill_null(False).alias("bad"),
        ((total > 1) & (ok < total)).fill_null(False).alias("ambiguous"),
    )

    def good(value: Any) -> bool:
        if allow_any_scalar:
            return not isinstance(value, (list, dict))
        return value is None or isinstance(value, str)

    bad = _resolve_ambiguous(frame, flags["bad"], flags["ambiguous"], key, good)
    expected = "a string or number" if allow_any_scalar else "a string"
    frame = frame.with_columns(
        pl.when(~bad).then(canon.str.json_path_match(_path(key))).alias(out)
    )
    reason = frame.select(pl.when(bad).then(pl.lit(f"field '{shown}' must be {expected}"))).to_series()
    return frame, reason


def _missing(frame: pl.DataFrame, col: str, shown: str) -> pl.Series:
    return frame.select(
        pl.when(pl.col(col).is_null()).then(pl.lit(f"field '{shown}' is missing"))
    ).to_series()


def _none(frame: pl.DataFrame) -> pl.Series:
    return pl.Series([None] * frame.height, dtype=pl.String)


def _list_text(frame: pl.DataFrame, key: str, lists_as_text: bool) -> tuple[pl.DataFrame, pl.Series]:
    """Compact JSON text of a list field into ``_lt``; reason where the value is not a list.

    With ``lists_as_text`` (CSV) the cell is a string holding JSON, canonicalised here.
    """
    canon = pl.col("canon")
    value = canon.str.json_path_match(_path(key))
    if lists_as_text:
        frame = frame.with_columns(value.str.json_path_match("$").alias("_lt"), value.alias("_lv"))
        reason = frame.select(
            pl.when(pl.col("_lv").is_not_null() & ~pl.col("_lt").fill_null("").str.starts_with("["))
            .then(pl.lit(f"field '{key}' must hold a JSON list"))
        ).to_series()
        return frame.drop("_lv").with_columns(
            pl.when(pl.col("_lt").str.starts_with("[")).then(pl.col("_lt")).alias("_lt")
        ), reason
    total, ok = _value_kind_counts(key, "[")
    frame = frame.with_columns(value.alias("_lt"), total.alias("_total"), ok.alias("_ok"))
    exact_bad = ((pl.col("_total") == 1) & (pl.col("_ok") == 0)).fill_null(False)
    ambiguous = ((pl.col("_total") > 1) & (pl.col("_ok") < pl.col("_total"))).fill_null(False)
    flags = frame.select(exact_bad.alias("b"), ambiguous.alias("a"))
    bad_s = _resolve_ambiguous(
        frame, flags["b"], flags["a"], key, lambda v: v is None or isinstance(v, list)
    )
    reason = frame.select(pl.when(bad_s).then(pl.lit(f"field '{key}' must be a list"))).to_series()
    frame = frame.with_columns(pl.when(~bad_s).then(pl.col("_lt")).alias("_lt"))
    return frame.drop("_total", "_ok"), reason


def _string_list(
    frame: pl.DataFrame, key: str, out: str, lists_as_text: bool, *, nulls_ok: bool
) -> tuple[pl.DataFrame, pl.Series]:
    """A list-of-strings field into ``out``; reason where it is a list of something else."""
    frame, reason = _list_text(frame, key, lists_as_text)
    pattern = _STR_OR_NULL_LIST if nulls_ok else _STR_LIST
    is_ok = pl.col("_lt").str.contains(pattern)
    frame = frame.with_columns(
        pl.when(is_ok).then(pl.col("_lt")).str.json_decode(pl.List(pl.String)).alias(out),
        pl.when(pl.col("_lt").is_not_null() & ~is_ok)
        .then(pl.lit(f"field '{key}' must be a list of strings"))
        .alias("_why"),
    )
    reason = pl.select(pl.coalesce(pl.lit(reason), pl.lit(frame["_why"]))).to_series() if frame.height else reason
    return frame.drop("_lt", "_why"), reason


def _candidates(
    frame: pl.DataFrame, key: str, lists_as_text: bool, label: str | None = None
) -> tuple[pl.DataFrame, pl.Series]:
    """Responses as list of strings, or list of {text|response, model} objects (models kept apart)."""
    shown = label or key
    frame, reason = _list_text(frame, key, lists_as_text)
    lt = pl.col("_lt")
    is_str_list = lt.str.contains(_STR_LIST)
    is_obj_list = lt.str.starts_with("[{")
    frame = frame.with_columns(
        pl.when(is_str_list).then(lt).str.json_decode(pl.List(pl.String)).alias("responses"),
        pl.when(is_obj_list).then(lt).alias("_objs"),
    )
    objs, failed = _decode_isolating(frame["_objs"], pl.List(_CANDIDATE))
    frame = frame.with_columns(objs.alias("_objs"), failed.alias("_failed"))
    n_items = pl.col("_objs").list.len()
    text_of = pl.coalesce(pl.element().struct.field("text"), pl.element().struct.field("response"))
    n_texts = pl.col("_lt").str.count_matches('"text":"', literal=True) + pl.col("_lt").str.count_matches(
        '"response":"', literal=True
    )
    texts_ok = (n_texts >= n_items) & ~pl.col("_objs").list.eval(text_of.is_null()).list.any()
    models_ok = pl.col("_lt").str.count_matches('"model":', literal=True) == (
        pl.col("_lt").str.count_matches('"model":"', literal=True)
        + pl.col("_lt").str.count_matches('"model":null', literal=True)
    )
    obj_ok = pl.col("_objs").is_not_null() & ~pl.col("_failed") & texts_ok & models_ok
    frame = frame.with_columns(
        pl.when(obj_ok)
        .then(pl.col("_objs").list.eval(text_of))
        .otherwise(pl.col("responses"))
        .alias("responses"),
        pl.when(obj_ok)
        .then(pl.col("_objs").list.eval(pl.element().struct.field("model")))
        .alias("_cand_models"),
        pl.when(lt.is_not_null() & ~is_str_list.fill_null(False) & ~obj_ok.fill_null(False))
        .then(pl.lit(f"field '{shown}' must be a list of strings or of {{text, model}} objects"))
        .alias("_why"),
    )
    reason = pl.select(pl.coalesce(pl.lit(reason), pl.lit(frame["_why"]))).to_series()
    return frame.drop("_lt", "_objs", "_failed", "_why"), reason


def _metadata(frame: pl.DataFrame, key: str | None, lists_as_text: bool) -> tuple[pl.DataFrame, pl.Series]:
    """Metadata as compact JSON object text ("{}" when absent).

    Accepts a JSON object, or a string holding one (CSV cells, and judgeflow's own rows.parquet,
    which stores metadata as JSON text).
    """
    del lists_as_text  # objects and object-texts are accepted from every format
    if key is None:
        return frame.with_columns(pl.lit("{}").alias("metadata")), _none(frame)
    # value and parsed are columns, each computed once (as expressions, polars parsed every row's
    # JSON once per use: three times the work for a large metadata object)
    frame = frame.with_columns(pl.col("canon").str.json_path_match(_path(key)).alias("_meta_value"))
    frame = frame.with_columns(pl.col("_meta_value").str.json_path_match("$").alias("_meta_parsed"))
    value, parsed = pl.col("_meta_value"), pl.col("_meta_parsed")
    is_obj = parsed.str.starts_with("{")
    frame = frame.with_columns(
        pl.when(value.is_null()).then(pl.lit("{}")).when(is_obj).then(parsed).alias("metadata"),
        pl.when(value.is_not_null() & ~is_obj.fill_null(False))
        .then(pl.lit(f"field '{key}' must be a JSON object"))
        .alias("_why"),
    )
    reason = frame["_why"]
    return frame.drop("_why", "_meta_value", "_meta_parsed"), reason
