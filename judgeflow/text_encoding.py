"""Text input as UTF-8: decode files that say they are UTF-16 or UTF-32, refuse the ones that hide it.

JSONL and CSV are read as UTF-8 (polars needs it). Files saved by Windows tools or exported by
some databases are UTF-16 (or, rarely, UTF-32) and start with a byte-order mark; read as UTF-8
they look like text with a NUL after every character and no JSON key or CSV header is found. A
BOM names the encoding without guessing, so such files are decoded. Without a BOM, text in a wide
encoding is recognised by its NUL bytes (a NUL is never valid in JSON or in a CSV cell) and
refused with a message saying what to do, rather than guessed at.
"""

from __future__ import annotations

from judgeflow.columns import InputError

# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
BOMS: tuple[tuple[bytes, str, str], ...] = (
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32 (big-endian)"),
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32 (little-endian)"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xfe\xff", "utf-16-be", "UTF-16 (big-endian)"),
    (b"\xff\xfe", "utf-16-le", "UTF-16 (little-endian)"),
)
SNIFF_BYTES = 4096
WIDE_NUL_SHARE = 0.25  # ASCII text in UTF-16 is half NUL bytes, in UTF-32 three quarters


def to_utf8(name: str, data: bytes) -> tuple[bytes, str | None]:
    """(UTF-8 bytes without a BOM, a note saying what was decoded or ``None``).

    Raises ``InputError`` naming ``name`` when a BOM's encoding does not decode, or when the
    text looks wide (UTF-16/32) but carries no BOM to say which.
    """
    for bom, codec, label in BOMS:
        if not data.startswith(bom):
            continue
        if codec == "utf-8":
            return data[len(bom):], None  # the loaders handle bad UTF-8 line by line
        try:
            text = data[len(bom):].decode(codec)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name}: starts with a {label} byte-order mark but is not valid {label.split()[0]} "
                f"({exc.reason} at byte {exc.start + len(bom)}); save it as UTF-8"
            ) from None
        return text.encode("utf-8"), f"decoded from {label}, as its byte-order mark says"
    sample = data[:SNIFF_BYTES]
    nuls = sample.count(0)
    if sample and nuls >= WIDE_NUL_SHARE * len(sample):
        raise InputError(
            f"{name}: not UTF-8 text ({100 * nuls // len(sample)}% of its first bytes are NUL: "
            "UTF-16 or UTF-32 without a byte-order mark, or a binary file); save it as UTF-8"
        )
    return data, None
