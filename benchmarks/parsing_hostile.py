"""Reply parsing on hostile replies: time per reply from 4k to 1 MB characters, per parser.

    python -m benchmarks.parsing_hostile                 # medians of 5, 4k..1M, old patterns up to 16k
    python -m benchmarks.parsing_hostile --quick         # medians of 3, 4k..256k, old patterns at 4k
    python -m benchmarks.parsing_hostile --json out.json

Why: a judge's reply is untrusted text, parsed on the live path's event loop. Forward-searching
patterns with nested quantifiers (prometheus-eval's family, and judgeflow's until issue 13) take
O(n^2) on replies such as ``Score:`` followed by n spaces, so one 1 MB reply would hold the loop
for hours. The target: every shape at 1 MB under 50 ms for the Prometheus and pairwise-json
parsers. A custom ``score_regex`` is the user's own pattern: it runs with a timeout
(``CUSTOM_REGEX_TIMEOUT_S``), and its figures show ordinary patterns on hostile replies and the
timeout stopping a pattern that backtracks without bound.

Each figure is the median wall time of one parse (``ParseError`` counts as a result: refusing
quickly is the point). The old forward patterns run at the small sizes only, once, to show the
growth they had.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import machine_info, md_table
from judgeflow.parsing import (
    CUSTOM_REGEX_TIMEOUT_S,
    ParseError,
    parse_absolute,
    parse_custom,
    parse_pairwise_json,
    parse_relative,
)

TARGET_MS = 50.0
SIZES = (4_096, 16_384, 65_536, 262_144, 1_048_576)
OLD_SIZES = (4_096, 8_192, 16_384)

# The forward pattern judgeflow used before issue 13 (prometheus-eval 0.1.20's absolute family).
OLD_ABSOLUTE = re.compile(
    r"(?:\[RESULT\]|\[SCORE\]|Score:?|score:?|Result:?|\[Result\]:?|score\s+of)\s*(?:\(|\[|\s)*(\d+)"
    r"(?:(?:\)|\]|\s|$)|(?:/\s*5|\s*out\s*of\s*5))?\s*\Z",
    re.IGNORECASE,
)
OLD_RELATIVE = re.compile(
    r"(?:\[RESULT\]|\[RESULT:\s*|\[Response\s+|\[Result\](?:\s+Response)?|\[Result:\s*|(?:^|\n)Result:?\s*)"
    r"\s*(A|B)(?:\])?\s*\Z",
    re.IGNORECASE | re.MULTILINE,
)


def _times(n: int, text: str) -> str:
    """``text`` repeated to about ``n`` characters."""
    return text * max(1, n // len(text))


# shape name -> reply of about n characters; every shape's intended outcome is in the docstring.
ABSOLUTE_SHAPES: dict[str, Callable[[int], str]] = {
    "score-spaces (no verdict)": lambda n: "Score:" + " " * n,
    "score-spaces then verdict": lambda n: "Score:" + " " * n + "\nFeedback: fine. [RESULT] 4",
    "many [RESULT] quotes": lambda n: _times(n, "[RESULT] 5 ") + "[RESULT] 2",
    "verdict then spaces": lambda n: "[RESULT] 3" + " " * n,
    "brackets": lambda n: "Score" + _times(n, "[("),
    "digits": lambda n: "[RESULT] " + "1" * n,
}
RELATIVE_SHAPES: dict[str, Callable[[int], str]] = {
    "[RESULT: + spaces (no verdict)": lambda n: "[RESULT:" + " " * n,
    "Result: + spaces then verdict": lambda n: "\nResult:" + " " * n + "A",
    "many [RESULT] quotes": lambda n: _times(n, "[RESULT] A ") + "[RESULT] B",
    "[Response + whitespace": lambda n: "[Response" + _times(n, " \n") + "B]",
}
PAIRWISE_SHAPES: dict[str, Callable[[int], str]] = {
    "fenced flip after prose": lambda n: _times(n, "word ") + '\n```json\n{"preferred": "A"}\n```\n{"preferred": "B"}',
    "many quoted objects": lambda n: _times(n, '{"preferred": "A"} ') + '{"preferred": "B"}',
    "many fences": lambda n: _times(n, '```json\n{"preferred": "A"}\n```\n') + '{"preferred": "B"}',
    "brace run": lambda n: "{" * n + '{"preferred": "B"}',
    "deep chain": lambda n: _times(n, '{"a":') + '{"preferred": "B"}',
    "spaces inside": lambda n: '{"reasoning": "ok",' + " " * n + '"preferred": "B"}',
    "long reasoning": lambda n: '{"reasoning": "' + "x" * n + '", "preferred": "B"}',
    "brackets in final (refused)": lambda n: '{"x": ' + "[" * (n // 2) + "]" * (n // 2) + ', "preferred": "B"}',
}
CUSTOM_PATTERN = r"score:\s*(\d+)"
CUSTOM_ANCHORED = r"score:\s*(\d+)\s*$"
CUSTOM_SHAPES: dict[str, tuple[str, Callable[[int], str]]] = {
    "spaces then verdict": (CUSTOM_PATTERN, lambda n: "Score:" + " " * n + "Score: 4"),
    "many matches": (CUSTOM_PATTERN, lambda n: _times(n, "score: 5 ") + "score: 2"),
    "anchored, no match": (CUSTOM_ANCHORED, lambda n: _times(n, "score: ")),
}
BACKTRACKING = r"(\s*\d+\s*)+$"  # a user pattern that backtracks without bound


def _parse_once(parse: Callable[[str], Any], text: str) -> float:
    started = time.perf_counter()
    try:
        parse(text)
    except ParseError:
        pass
    return (time.perf_counter() - started) * 1e3


def measure(parse: Callable[[str], Any], make: Callable[[int], str], sizes: tuple[int, ...], repeats: int) -> list[float]:
    """Median milliseconds of one parse per size."""
    out = []
    for size in sizes:
        text = make(size)
        out.append(statistics.median(_parse_once(parse, text) for _ in range(repeats)))
    return out


def run(sizes: tuple[int, ...], old_sizes: tuple[int, ...], repeats: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    suites: list[tuple[str, dict[str, Callable[[int], str]], Callable[[str], Any]]] = [
        ("absolute", ABSOLUTE_SHAPES, parse_absolute),
        ("relative", RELATIVE_SHAPES, parse_relative),
        ("pairwise-json", PAIRWISE_SHAPES, parse_pairwise_json),
    ]
    for parser, shapes, parse in suites:
        for shape, make in shapes.items():
            rows.append({"parser": parser, "shape": shape, "ms": measure(parse, make, sizes, repeats)})
    for shape, (pattern, make) in CUSTOM_SHAPES.items():
        def parse(text: str, pattern: str = pattern) -> Any:
            return parse_custom(text, pattern)

        rows.append({"parser": f"custom {pattern}", "shape": shape, "ms": measure(parse, make, sizes, repeats)})
    backtracking_ms = _parse_once(lambda t: parse_custom(t, BACKTRACKING), _times(sizes[-1], " 1") + " x")
    old = [_parse_once(OLD_ABSOLUTE.search, ABSOLUTE_SHAPES["score-spaces (no verdict)"](n)) for n in old_sizes]
    old_relative = [_parse_once(OLD_RELATIVE.search, RELATIVE_SHAPES["[RESULT: + spaces (no verdict)"](n)) for n in old_sizes]
    largest = sizes[-1]
    worst = max((r for r in rows if not r["parser"].startswith("custom")), key=lambda r: r["ms"][-1])
    return {
        "machine": machine_info(),
        "sizes": list(sizes),
        "repeats": repeats,
        "rows": rows,
        "custom_backtracking": {"pattern": BACKTRACKING, "chars": largest, "ms": backtracking_ms,
                                "timeout_s": CUSTOM_REGEX_TIMEOUT_S},
        "old": {"sizes": list(old_sizes), "absolute_score_spaces_ms": old, "relative_result_spaces_ms": old_relative},
        "target_ms": TARGET_MS,
        "worst_at_largest": {"parser": worst["parser"], "shape": worst["shape"], "ms": worst["ms"][-1]},
        "target_met": worst["ms"][-1] < TARGET_MS,
    }


def _size(n: int) -> str:
    return f"{n // 1_048_576}M" if n >= 1_048_576 else f"{n // 1024}k"


def report(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    table = md_table(
        ["parser", "shape", *[f"{_size(n)} ms" for n in sizes]],
        [[r["parser"], r["shape"], *[f"{ms:.2f}" for ms in r["ms"]]] for r in result["rows"]],
    )
    old = result["old"]
    old_table = md_table(
        ["old forward pattern", *[f"{_size(n)} ms" for n in old["sizes"]]],
        [["absolute, `Score:` + spaces", *[f"{ms:,.0f}" for ms in old["absolute_score_spaces_ms"]]],
         ["relative, `[RESULT:` + spaces", *[f"{ms:,.0f}" for ms in old["relative_result_spaces_ms"]]]],
    )
    bt = result["custom_backtracking"]
    worst = result["worst_at_largest"]
    machine = result["machine"]
    return "\n\n".join([
        table,
        f"Custom `{bt['pattern']}` (backtracks without bound) on {_size(bt['chars'])}: stopped after "
        f"{bt['ms']:,.0f} ms by the {bt['timeout_s']:g} s timeout (a ParseError).",
        old_table,
        f"Worst Prometheus/pairwise figure at {_size(sizes[-1])}: {worst['ms']:.2f} ms ({worst['parser']}, "
        f"{worst['shape']}); target < {result['target_ms']:.0f} ms: {'PASS' if result['target_met'] else 'MISS'}. "
        f"Medians of {result['repeats']}; {machine['nproc']} cores, load average {machine['loadavg_1m']} at start.",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="sizes up to 256k, 3 repeats, old patterns at 4k only")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", help="also write the figures as JSON to this path")
    args = parser.parse_args(argv)
    sizes = SIZES[:-1] if args.quick else SIZES
    old_sizes = OLD_SIZES[:1] if args.quick else OLD_SIZES
    result = run(sizes, old_sizes, args.repeats or (3 if args.quick else 5))
    print(report(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    print(json.dumps({"target_met": result["target_met"], "worst_at_largest": result["worst_at_largest"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
