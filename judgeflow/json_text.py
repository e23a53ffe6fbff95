"""Reading fields out of a column of canonical (compact) JSON texts with polars expressions.

The loader reduces every source row to one compact JSON object text (``canon``); the column
decoding (``judgeflow.loading``) and the dataset-format conversions (``judgeflow.formats``) both
pull typed values out of it without parsing rows one by one in Python. A value's JSON type is
read from the text itself (``"key":"`` opens a string, ``"key":[`` a list); only rows where that
is ambiguous (the same key nested deeper with another type) are parsed individually.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import polars as pl


def key_pat(key: str) -> str:
    """The literal text that opens ``key``'s value in compact JSON (``"key":``)."""
    return orjson.dumps(key).decode() + ":"


def json_path(key: str) -> str:
    """A JSON path selecting the top-level ``key`` (any characters in the key are safe)."""
    return "$[" + orjson.dumps(key).decode() + "]"


def resolve_ambiguous(
    frame: pl.DataFrame, bad: pl.Series, ambiguous: pl.Series, key: str, good: Callable[[Any], bool]
) -> pl.Series:
    """Settle the type of ``key`` exactly, in Python, for the few ambiguous rows only.

    A row is ambiguous when ``"key":`` occurs more than once in its canonical JSON with mixed
    value types (a nested object reusing the key); ``good(value)`` judges the top-level value.
    """
    positions = ambiguous.arg_true()
    if positions.len() == 0:
        return bad
    texts = frame["canon"].gather(positions).to_list()
    verdicts = [not good(orjson.loads(text).get(key)) for text in texts]
    return bad.scatter(positions, pl.Series(verdicts, dtype=pl.Boolean))


def decode_isolating(texts: pl.Series, dtype: pl.DataType) -> tuple[pl.Series, pl.Series]:
    """``json_decode`` the whole column; on failure bisect so only failing rows are nulled.

    Returns (decoded, failed). Cost: one decode when clean, O(k log n) small decodes for k bad rows.
    """
    try:
        return texts.str.json_decode(dtype), pl.Series([False] * len(texts), dtype=pl.Boolean)
    except pl.exceptions.PolarsError:
        if len(texts) == 1:
            return pl.Series([None], dtype=dtype), pl.Series([True], dtype=pl.Boolean)
    mid = len(texts) // 2
    left, lf = decode_isolating(texts.slice(0, mid), dtype)
    right, rf = decode_isolating(texts.slice(mid), dtype)
    return pl.concat([left, right]), pl.concat([lf, rf])


def value_kinds(frame: pl.DataFrame, key: str) -> pl.Series:
    """Per row, the JSON type of top-level ``key``: "string", "list", "null", "other", or null
    when the row has no such key (or is not an object)."""
    canon = pl.col("canon")
    pat = key_pat(key)
    total = canon.str.count_matches(pat, literal=True)
    opens = {kind: canon.str.count_matches(pat + opener, literal=True)
             for kind, opener in (("string", '"'), ("list", "["), ("null", "null"))}
    kind = (
        pl.when(total.fill_null(0) == 0).then(pl.lit(None, dtype=pl.String))
        .when(opens["string"] > 0).then(pl.lit("string"))
        .when(opens["list"] > 0).then(pl.lit("list"))
        .when(opens["null"] > 0).then(pl.lit("null"))
        .otherwise(pl.lit("other"))
    )
    kinds = frame.select(kind.alias("k"), (total > 1).fill_null(False).alias("a"))
    positions = kinds["a"].arg_true()
    if positions.len() == 0:
        return kinds["k"]
    exact = [_kind(orjson.loads(text).get(key, ...)) for text in frame["canon"].gather(positions).to_list()]
    return kinds["k"].scatter(positions, pl.Series(exact, dtype=pl.String))


def _kind(value: Any) -> str | None:
    if value is ...:
        return None
    if value is None:
        return "null"
    return "string" if isinstance(value, str) else "list" if isinstance(value, list) else "other"
