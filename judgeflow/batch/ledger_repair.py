"""Reading what is left of a damaged ledger file.

The ledger is rewritten atomically, so a crash of judgeflow never tears it; a full disk, a copy
cut short or a sync tool can. What matters then is not paying twice: every entry that can still
be read (each complete entry object before the damage) names a batch that is already paid for.
The ledger's entries are written in creation order, so a file cut short loses the newest ones;
those are found again in the previous version of the ledger kept beside it (``*.prev``) or, for
OpenAI, by the batches' metadata.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Entry ids named anywhere in the damaged text (an entry cut short still shows its id).
_ENTRY_ID = re.compile(r'"entry_id"\s{0,8}:\s{0,8}"([^"\\]{1,512})"')
_WS = " \t\r\n"


def named_entry_ids(text: str) -> set[str]:
    """Every entry id the damaged text mentions, complete entry or not."""
    return set(_ENTRY_ID.findall(text))


def salvage_entries(raw: bytes) -> dict[str, dict[str, Any]]:
    """The complete ``"<entry id>": {...}`` pairs of the ``entries`` object, in order, up to
    the first point where the text stops making sense."""
    text = raw.decode("utf-8", "replace")
    start = text.find('"entries"')
    if start < 0:
        return {}
    i = text.find("{", start)
    if i < 0:
        return {}
    decoder = json.JSONDecoder()
    out: dict[str, dict[str, Any]] = {}
    i += 1
    try:
        while True:
            while i < len(text) and text[i] in _WS + ",":
                i += 1
            if i >= len(text) or text[i] == "}":
                return out
            key, i = decoder.raw_decode(text, i)
            while text[i] in _WS:
                i += 1
            if text[i] != ":":
                return out
            i += 1
            while text[i] in _WS:
                i += 1
            value, i = decoder.raw_decode(text, i)
            if isinstance(key, str) and isinstance(value, dict):
                out[key] = value
    except (ValueError, IndexError):
        return out


__all__ = ["named_entry_ids", "salvage_entries"]
