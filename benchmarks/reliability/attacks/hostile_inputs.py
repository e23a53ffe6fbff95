"""Hostile input files and configs: each ends in the right rows or one clear error, nothing escapes.

What a user (or a scheduled job fed by someone else's export) hands a build:

* input files in other encodings (UTF-16/UTF-32 with a byte-order mark, UTF-16 without one, a
  UTF-8 BOM), random bytes named ``.jsonl``/``.csv``/``.json``, empty JSONL and CSV files, a good
  file with one line of random bytes in it;
* configs whose names climb out of ``output.dir`` (``run_id: ../../../../x``, ``dataset: ..``,
  a judge or generator named ``..``, the same through ``--set``) and an ``output.dir`` that is a
  file.

Files go through the loader in process and through ``judgeflow validate --json`` in a real
subprocess; configs through ``judgeflow run`` in a real subprocess (its own session, killed at a
time limit). A readable file must give the expected rows; an unreadable one a single error line
naming the file; a bad config exit status 2 naming the field. Never a traceback, and never a new
path under the attack's folder outside the configured ``output.dir``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from benchmarks.reliability.attacks import AttackContext, AttackResult, attack

ROWS = [
    {"id": "h1", "prompt": "Quelle est la capitale ? ü", "responses": ["Paris", "Lyon"]},
    {"id": "h2", "prompt": "What is 2+2? 😀", "responses": ["4", "5"]},
]
JSONL = "".join(orjson.dumps(r).decode() + "\n" for r in ROWS)
CSV = 'id,prompt,responses\nh1,"Quelle est la capitale ? ü","[""Paris"",""Lyon""]"\nh2,What is 2+2? 😀,"[""4"",""5""]"\n'
KEY_ENV = "JF_HOSTILE_INPUTS_KEY"
RUN_LIMIT_S = 90.0  # a bad config must be refused in about a second; this only bounds a regression
SHORT_LINES = 8  # preflight may list other failed checks beside the one this case plants


@dataclass(frozen=True)
class FileCase:
    """A file and what loading it must give: ``rows`` valid rows, or an error holding ``words``."""

    name: str
    data: bytes
    rows: int | None = None  # None: must be refused
    words: tuple[str, ...] = ()
    note: str | None = None  # a note the load must carry


def file_cases(quick: bool) -> list[FileCase]:
    """The hostile files, made here (nothing binary is committed); fewer random seeds when quick."""
    seeds = [11] if quick else [11, 12, 13]
    cases = [
        FileCase("utf16le-bom.jsonl", b"\xff\xfe" + JSONL.encode("utf-16-le"), rows=2, note="UTF-16"),
        FileCase("utf16be-bom.jsonl", b"\xfe\xff" + JSONL.encode("utf-16-be"), rows=2, note="UTF-16"),
        FileCase("utf32le-bom.jsonl", b"\xff\xfe\x00\x00" + JSONL.encode("utf-32-le"), rows=2, note="UTF-32"),
        FileCase("utf8-bom.jsonl", b"\xef\xbb\xbf" + JSONL.encode(), rows=2),
        FileCase("utf8-bom.csv", b"\xef\xbb\xbf" + CSV.encode(), rows=2),
        FileCase("utf16-bom.csv", b"\xff\xfe" + CSV.encode("utf-16-le"), rows=2, note="UTF-16"),
        FileCase("utf16-gz.jsonl.gz", gzip.compress(b"\xff\xfe" + JSONL.encode("utf-16-le")), rows=2),
        FileCase("utf16-no-bom.jsonl", JSONL.encode("utf-16-le"), words=("UTF-8",)),
        FileCase("utf16-no-bom.csv", CSV.encode("utf-16-le"), words=("UTF-8",)),
        FileCase("empty.jsonl", b"", rows=0, note="no rows"),
        FileCase("empty.csv", b"", rows=0, note="no rows"),
        FileCase("blank-lines.csv", b"\n\n\n", rows=0, note="no rows"),
        FileCase("empty.jsonl.gz", gzip.compress(b""), rows=0, note="no rows"),
        FileCase("one-random-line.jsonl",
                 JSONL.encode() + random.Random(5).randbytes(200).replace(b"\n", b" ") + b"\n", rows=2),
    ]
    for seed in seeds:
        noise = random.Random(seed).randbytes(4096)
        cases += [
            FileCase(f"random-{seed}.jsonl", noise, words=("not JSON", "line ")),
            FileCase(f"random-{seed}.json", b"[" + noise, words=("not JSON",)),
            FileCase(f"random-{seed}.csv", noise),
        ]
    return cases


@dataclass(frozen=True)
class ConfigCase:
    """A config change (or ``--set``) that must be refused with exit 2, naming ``field``."""

    name: str
    change: Callable[[dict[str, Any], Path], None]
    field: str
    overrides: tuple[str, ...] = ()
    short: bool = False


def _set(path: str, value: Any) -> Callable[[dict[str, Any], Path], None]:
    def change(data: dict[str, Any], root: Path) -> None:
        target: Any = data
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
        target[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return change


def _output_dir_is_a_file(data: dict[str, Any], root: Path) -> None:
    blocker = root / "sandbox" / "a-file"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder\n", encoding="utf-8")
    data["output"]["dir"] = str(blocker)


CONFIG_CASES = [
    ConfigCase("run_id-traversal", _set("run_id", "../../../../escaped-run"), "run_id"),
    ConfigCase("run_id-dotdot", _set("run_id", ".."), "run_id"),
    ConfigCase("run_id-hidden", _set("run_id", ".hidden"), "run_id"),
    ConfigCase("dataset-dotdot", _set("dataset", ".."), "dataset"),
    ConfigCase("judge-name-dotdot", _set("judges.0.name", ".."), "name"),
    ConfigCase("judge-name-traversal", _set("judges.0.name", "../../../../../escaped-judge"), "name"),
    ConfigCase("generator-name-traversal", _set("generation", {
        "enabled": True, "n_candidates": 3,
        "generators": [{"name": "../../../escaped-gen", "provider": "openai-compatible", "model": "m",
                        "base_url": "http://127.0.0.1:9/v1", "api_key_env": KEY_ENV}],
    }), "name"),
    ConfigCase("run_id-via---set", lambda data, root: None, "run_id", overrides=("run_id=../../../../escaped-set",)),
    ConfigCase("output-dir-is-a-file", _output_dir_is_a_file, "output.dir", short=True),
]


def _base_config(root: Path, rows_path: Path) -> dict[str, Any]:
    """A config that would build (against a dead endpoint) if its names were let through."""
    return {
        "dataset": "hostile",
        "input": {"uri": str(rows_path)},
        "judges": [{
            "name": "j1", "kind": "absolute", "provider": "openai-compatible", "mode": "live",
            "model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_env": KEY_ENV,
            "timeout_s": 1, "max_retries": 0,
        }],
        "output": {"dir": str(root / "sandbox" / "d1" / "d2" / "d3" / "out")},
        "cache": False,
    }


def _cli(args: list[str], env: dict[str, str], cwd: Path, limit_s: float) -> tuple[int | None, str]:
    """(exit status or None on time-out, stdout + stderr) of ``judgeflow ARGS`` in its own session."""
    exe = Path(sys.executable).with_name("judgeflow")
    command = [str(exe)] if exe.exists() else [sys.executable, "-c", "from judgeflow.cli import main; main()"]
    proc = subprocess.Popen(
        [*command, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=limit_s)
        return proc.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace")


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


class _Tally:
    def __init__(self) -> None:
        self.tried = 0
        self.violations: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        self.tried += 1
        if not ok:
            self.violations.append(what)


def _attack_file(case: FileCase, folder: Path, env: dict[str, str], t: _Tally) -> None:
    from judgeflow.columns import InputError
    from judgeflow.loading import load_rows

    path = folder / case.name
    path.write_bytes(case.data)
    # in process: the loader the build uses
    try:
        result = load_rows(path)
    except InputError as exc:
        message = str(exc)
        t.check(case.rows is None, f"{case.name}: refused, expected {case.rows} rows ({message})")
        t.check(case.name in message and "\n" not in message, f"{case.name}: error not one line naming the file: {message!r}")
        t.check(all(w in message for w in case.words), f"{case.name}: error lacks {case.words}: {message!r}")
    except Exception as exc:  # noqa: BLE001 - anything but InputError is the finding
        t.check(False, f"{case.name}: load_rows raised {type(exc).__name__}: {exc}")
    else:
        counts = result.counts
        t.check(case.rows is not None, f"{case.name}: loaded ({counts.rows_valid} valid), expected an error")
        t.check(case.rows is None or counts.rows_valid == case.rows,
                f"{case.name}: {counts.rows_valid} valid rows, expected {case.rows}")
        t.check(counts.rows_in == counts.rows_valid + counts.rows_quarantined, f"{case.name}: rows lost: {counts}")
        notes = getattr(result, "notes", [])
        t.check(case.note is None or any(case.note in n for n in notes),
                f"{case.name}: no note saying {case.note!r} ({notes})")
        if case.rows:
            t.check(result.rows["instruction"].to_list() == [r["prompt"] for r in ROWS],
                    f"{case.name}: texts changed in decoding: {result.rows['instruction'].to_list()}")
    # the CLI a user runs first
    code, out = _cli(["validate", str(path), "--json"], env, folder, 60.0)
    t.check("Traceback" not in out, f"{case.name}: judgeflow validate printed a traceback")
    if case.rows is None:
        lines = _lines(out)
        t.check(code == 2, f"{case.name}: judgeflow validate exited {code}, expected 2")
        t.check(len(lines) == 1 and case.name in lines[0], f"{case.name}: validate error not one line naming the file: {lines[:3]}")
    else:
        t.check(code == 0, f"{case.name}: judgeflow validate exited {code}, expected 0: {out[-300:]}")
        try:
            summary = orjson.loads(_lines(out)[-1])
        except (orjson.JSONDecodeError, IndexError):
            t.check(False, f"{case.name}: validate --json did not end with a JSON line")
        else:
            t.check(summary.get("rows_valid") == case.rows, f"{case.name}: validate says {summary.get('rows_valid')} valid, expected {case.rows}")


def _attack_config(case: ConfigCase, root: Path, rows_path: Path, env: dict[str, str], t: _Tally) -> None:
    folder = root / "configs" / case.name
    folder.mkdir(parents=True, exist_ok=True)
    data = _base_config(folder, rows_path)
    case.change(data, folder)
    out_dir = Path(data["output"]["dir"])
    path = folder / "build.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    before = _tree(folder)
    args = ["run", str(path)] + [a for o in case.overrides for a in ("--set", o)]
    code, out = _cli(args, env, folder, RUN_LIMIT_S)
    escaped = sorted(
        str(p.relative_to(folder)) for p in _tree(folder) - before
        if not (p.is_relative_to(out_dir) or out_dir.is_relative_to(p))  # out_dir and its parents
    )
    t.check(code is not None, f"{case.name}: judgeflow run still running after {RUN_LIMIT_S:.0f} s (killed)")
    t.check(code == 2, f"{case.name}: judgeflow run exited {code}, expected 2: {out[-300:]!r}")
    t.check("Traceback" not in out, f"{case.name}: judgeflow run printed a traceback")
    t.check(case.field in out, f"{case.name}: the error does not name {case.field!r}: {out[-300:]!r}")
    t.check(not escaped, f"{case.name}: wrote outside output.dir: {escaped[:5]}")
    if case.short:  # the CLI's error contract: a few lines (what, where, fix), with the field on one line
        lines = _lines(out)
        t.check(len(lines) <= SHORT_LINES and any(case.field in line for line in lines),
                f"{case.name}: error is not a short message naming {case.field!r}: {lines[:SHORT_LINES + 1]}")


@attack("hostile_inputs")
def hostile_inputs(ctx: AttackContext) -> AttackResult:
    """Feed every hostile file to the loader and ``judgeflow validate``, every bad config to
    ``judgeflow run``; count what was checked and what broke."""
    t = _Tally()
    env = {**os.environ, **ctx.env, KEY_ENV: "sk-hostile-inputs-not-a-real-key"}
    files = ctx.root / "files"
    files.mkdir(parents=True, exist_ok=True)
    cases = file_cases(ctx.quick)
    for case in cases:
        _attack_file(case, files, env, t)
    rows_path = ctx.root / "rows.jsonl"
    rows_path.write_text(JSONL, encoding="utf-8")
    for config_case in CONFIG_CASES:
        _attack_config(config_case, ctx.root, rows_path, env, t)
    ctx.say(f"hostile_inputs: {len(cases)} files, {len(CONFIG_CASES)} configs, "
            f"{t.tried} checks, {len(t.violations)} violations")
    return AttackResult(
        tried=t.tried, violations=t.violations,
        numbers={"files": len(cases), "configs": len(CONFIG_CASES), "checks": t.tried},
    )
