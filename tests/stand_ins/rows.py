"""Small inputs for tests: row frames in ``ROWS_SCHEMA`` (GPU judges) and a JSONL file (builds)."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from judgeflow.schemas import ROWS_SCHEMA, content_hash

ROWS: list[tuple[str, list[str], str | None]] = [
    (
        "Explain photosynthesis in two sentences.",
        [
            "Plants turn light, water and carbon dioxide into sugar and oxygen.",
            "No idea, sorry.",
            "Photosynthesis is how plants make food from light. It releases oxygen.",
        ],
        "Plants use light to make sugar from water and carbon dioxide, releasing oxygen.",
    ),
    ("What is the capital of France?", ["Paris.", "It is Lyon, the capital since 1000."], None),
    (
        "Write a haiku about the sea.",
        ["Waves fold into foam, the tide forgets every name.", "The sea is big and wet."],
        None,
    ),
]


def rows_frame(rows: list[tuple[str, list[str], str | None]] = ROWS) -> pl.DataFrame:
    """Rows with ids = content hashes, as the loader would produce them."""
    records = []
    for index, (instruction, responses, reference) in enumerate(rows):
        digest = content_hash(instruction, responses, reference)
        records.append({
            "row_id": digest, "instruction": instruction, "responses": responses,
            "models": [None] * len(responses), "reference": reference, "metadata": "{}",
            "source_index": index, "content_hash": digest,
        })
    return pl.DataFrame(records, schema=ROWS_SCHEMA)


def write_build_rows(path: Path, n: int) -> None:
    """``n`` rows of two or three candidates, then one unparseable line and one blank instruction
    (both quarantined): the input of the build-flow tests."""
    lines = [
        orjson.dumps(
            {
                "id": f"row-{i:03d}",
                "prompt": f"Explain idea number {i} to a new engineer.",
                "responses": [f"Short take {i}.", f"A longer, structured explanation of idea {i} with an example.",
                              f"Idea {i}: it depends."][: 2 + i % 2],
                "models": ["model-a", "model-b", "model-c"][: 2 + i % 2],
            }
        )
        for i in range(n)
    ]
    lines.append(b'{"id": "broken", "prompt": ')  # unparseable
    lines.append(orjson.dumps({"id": "empty", "prompt": "   ", "responses": ["x", "y"]}))
    path.write_bytes(b"\n".join(lines) + b"\n")
