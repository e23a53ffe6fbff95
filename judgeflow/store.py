"""The judgment store: every judgment ever made for a dataset, keyed by request id.

A request id is a hash of (row content, judge spec, candidates, order) — see
``judgeflow.specs.expand_requests`` — so "has this exact question already been answered by this
exact judge?" is a set lookup. A nightly build therefore judges only rows it has not seen, and
running the same build twice sends nothing the second time.

Layout: ``{root}/judgments/{judge}/{spec_hash}/*.parquet`` (parts written by ``JudgmentSink``),
and ``{root}/batches/`` for the batch ledgers, so a crashed or repeated build re-attaches to
batches it already paid for whatever its run id.

What counts as answered is decided by the record's ``status`` alone (never by the text of its
error): ``ok``, and ``failed`` (the judge's own final failure: unparseable after the re-asks,
refused, prompt too long). ``error`` (auth, connection, 5xx/429 after retries, timeouts) and
``not_sent`` (budget, deadline, cancel) are asked again by the next run; ``retry_failed`` asks
the ``failed`` ones again too.

Stores written before statuses were explicit hold ``failed`` for every kind of failure; they
are read as final failures like any other (no guessing from messages). Run once with
``retry_failed`` (``judgeflow run --retry-failed``) to ask them again.

When one request has several records (asked again, re-judged with ``cache`` off), an answer
beats a failure and, among equals, the most recently written part wins. A part that cannot be
read (zero bytes, cut short by a full disk) is renamed ``*.corrupt`` with a warning naming it;
the requests it held are simply pending again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from judgeflow.judging.records import FAILURE_STATUSES
from judgeflow.schemas import JUDGMENTS_SCHEMA
from judgeflow.specs import JudgeSpec

log = logging.getLogger(__name__)

#: statuses that need no new request (``failed`` only without ``retry_failed``)
FINAL_FAILURE = "failed"
#: which record of a request wins: lower is better (an answer, then a final failure, then the rest)
_RANK = {"ok": 0, FINAL_FAILURE: 1}
assert FINAL_FAILURE in FAILURE_STATUSES

CORRUPT_SUFFIX = ".corrupt"


@dataclass(frozen=True)
class SetAside:
    """A part the store could not read, and where it was moved."""

    path: Path
    moved_to: Path
    reason: str

    def message(self) -> str:
        return (f"judgment store part {self.path} is unreadable ({self.reason}); set aside as "
                f"{self.moved_to.name}: the requests it held will be asked again")


def _unreadable(path: Path) -> str | None:
    """Why ``path`` is not a readable Parquet part (footer and schema), or None if it is."""
    try:
        if path.stat().st_size == 0:
            return "zero bytes"
        pl.read_parquet_schema(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read the footer makes it corrupt
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")
    return None


def set_aside_corrupt(paths: Iterable[Path]) -> tuple[list[Path], list[SetAside]]:
    """(the readable parts of ``paths``, the unreadable ones renamed ``*.corrupt``).

    Renaming rather than deleting keeps the bytes for a post-mortem; the new name no longer ends
    in ``.parquet``, so no reader picks it up again. Each one is logged as a warning naming it.
    """
    good: list[Path] = []
    aside: list[SetAside] = []
    for path in paths:
        reason = _unreadable(path)
        if reason is None:
            good.append(path)
            continue
        target = path.with_name(path.name + CORRUPT_SUFFIX)
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}.{n}")
            n += 1
        try:
            path.rename(target)
        except FileNotFoundError:  # another reader set it aside first
            continue
        item = SetAside(path, target, reason)
        log.warning("%s", item.message())
        aside.append(item)
    return good, aside


def _parts_in_write_order(directory: Path) -> list[Path]:
    """Parquet parts under ``directory``, oldest first (modification time, then name)."""
    files = []
    for path in directory.rglob("*.parquet"):
        try:
            files.append((path.stat().st_mtime_ns, path.name, path))
        except FileNotFoundError:  # compacted away while listing
            continue
    return [path for *_, path in sorted(files)]


def read_parts(directory: str | Path) -> pl.LazyFrame:
    """Every readable part under ``directory`` as one lazy frame, oldest part first; unreadable
    parts are set aside (see ``set_aside_corrupt``)."""
    files, _ = set_aside_corrupt(_parts_in_write_order(Path(directory)))
    if not files:
        return pl.LazyFrame(schema=JUDGMENTS_SCHEMA)
    return pl.scan_parquet(files, schema=JUDGMENTS_SCHEMA)


def best_per_request(records: pl.LazyFrame) -> pl.LazyFrame:
    """One record per request id: an answer over a final failure over a retryable one, and among
    equals the last one (records in write order). Output in write order of the winners."""
    rank = pl.col("status").replace_strict(_RANK, default=len(_RANK), return_dtype=pl.Int8)
    return (
        records.with_row_index("_order")
        .with_columns(rank.alias("_rank"))
        .sort("_rank", pl.col("_order"), descending=[False, True])
        .unique("request_id", keep="first")
        .sort("_order")
        .drop("_order", "_rank")
    )


def answered(*, retry_failed: bool = False) -> pl.Expr:
    """True for records that need no new request (see the module doc)."""
    done = pl.col("status") == "ok"
    return done if retry_failed else done | (pl.col("status") == FINAL_FAILURE)


@dataclass(frozen=True)
class JudgmentStore:
    """A folder of judgment parts, one sub-folder per (judge name, spec hash)."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> JudgmentStore:
        path = Path(root)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def judge_dir(self, spec: JudgeSpec) -> Path:
        """Where ``spec``'s judgments live; a changed spec (new hash) starts a fresh folder."""
        return self.root / "judgments" / spec.name / spec.spec_hash()

    def ledger_dir(self, spec: JudgeSpec) -> Path:
        """Where ``spec``'s batch ledger lives (shared by every run of the dataset)."""
        return self.root / "batches" / spec.name / spec.spec_hash()

    def check_parts(self, spec: JudgeSpec) -> list[SetAside]:
        """Set aside ``spec``'s unreadable parts now; what was moved (for the run's log)."""
        _, aside = set_aside_corrupt(_parts_in_write_order(self.judge_dir(spec)))
        return aside

    def scan(self, spec: JudgeSpec) -> pl.LazyFrame:
        """All stored judgments of ``spec``, one per request id (see ``best_per_request``)."""
        return best_per_request(read_parts(self.judge_dir(spec)))

    def answered_ids(self, spec: JudgeSpec, *, retry_failed: bool = False) -> pl.DataFrame:
        """Request ids that need no new request: answered, or failed by the judge itself (unless
        ``retry_failed``). Infrastructure failures and requests never sent are not in it."""
        return (
            self.scan(spec)
            .filter(answered(retry_failed=retry_failed))
            .select("request_id")
            .collect()
        )

    def pending(self, spec: JudgeSpec, requests: pl.DataFrame, *, retry_failed: bool = False) -> pl.DataFrame:
        """The subset of ``requests`` the store cannot answer yet."""
        return requests.join(self.answered_ids(spec, retry_failed=retry_failed), on="request_id", how="anti")

    def judgments_for(self, spec: JudgeSpec, requests: pl.DataFrame) -> pl.DataFrame:
        """Stored judgments of exactly ``requests`` (this run's view), in JUDGMENTS_SCHEMA."""
        found = self.scan(spec).join(requests.lazy().select("request_id"), on="request_id", how="semi")
        return found.collect().select(list(JUDGMENTS_SCHEMA))
