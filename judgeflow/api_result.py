"""What ``judgeflow.judge`` returns: the judgments and what it took to get them.

A notebook user asks "did it work, what did it cost, how fast was it, is anything failing?"
before looking at a single judgment; the flow answers that in its logs and artifacts, the Python
API in the result itself. ``JudgeResult.stats`` holds one line per judge, computed with polars
expressions from the judgments and the plan (which requests were sent, which the store already
held), so it counts the same way whichever path (live, batch, GPU) made a judgment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from judgeflow.pipeline import JudgePlan

STATS_SCHEMA: dict[str, pl.DataType] = {
    "judge": pl.String(),
    "judgments": pl.Int64(),
    "sent": pl.Int64(),
    "from_store": pl.Int64(),
    "ok": pl.Int64(),
    "failed": pl.Int64(),
    "retries": pl.Int64(),
    "cost_usd": pl.Float64(),
    "seconds": pl.Float64(),
    "requests_per_s": pl.Float64(),
}


def judge_stats(frame: pl.DataFrame, plans: Sequence[JudgePlan], seconds: Mapping[str, float]) -> pl.DataFrame:
    """One line per judge (in ``plans`` order), columns of ``STATS_SCHEMA``.

    ``judgments`` = ``sent`` + ``from_store`` = ``ok`` + ``failed`` (any status but ``ok``: the
    frame's ``status`` and ``error`` say which kind). ``retries``, ``cost_usd`` and ``seconds``
    are this call's: HTTP attempts beyond the first (transport retries and parse re-asks), the
    dollars of the requests sent, and the judge's wall time. ``requests_per_s`` = sent / seconds.
    """
    judges = pl.DataFrame({"judge": [p.spec.name for p in plans]}, schema={"judge": pl.String()})
    sent = pl.concat(
        [p.pending.select(pl.lit(p.spec.name).alias("judge"), "request_id") for p in plans]
        or [pl.DataFrame(schema={"judge": pl.String(), "request_id": pl.String()})]
    ).with_columns(pl.lit(True).alias("_sent"))
    was_sent = pl.col("_sent").fill_null(False)
    per_judge = (
        frame.select("judge", "request_id", "status", "attempts", "cost_usd")
        .join(sent, on=["judge", "request_id"], how="left")
        .group_by("judge")
        .agg(
            pl.len().alias("judgments"),
            was_sent.sum().alias("sent"),
            (~was_sent).sum().alias("from_store"),
            (pl.col("status") == "ok").sum().alias("ok"),
            (pl.col("status") != "ok").sum().alias("failed"),
            (pl.col("attempts") - 1).clip(lower_bound=0).filter(was_sent).sum().alias("retries"),
            pl.col("cost_usd").filter(was_sent).sum().alias("cost_usd"),
        )
    )
    timing = pl.DataFrame(
        {"judge": list(seconds), "seconds": list(seconds.values())},
        schema={"judge": pl.String(), "seconds": pl.Float64()},
    )
    counts = [c for c in STATS_SCHEMA if c not in ("judge", "cost_usd", "seconds", "requests_per_s")]
    return (
        judges.join(per_judge, on="judge", how="left", maintain_order="left")
        .join(timing, on="judge", how="left", maintain_order="left")
        .with_columns(
            pl.col(counts).fill_null(0).cast(pl.Int64),
            pl.col("cost_usd", "seconds").fill_null(0.0).cast(pl.Float64),
        )
        .with_columns(
            pl.when(pl.col("seconds") > 0)
            .then(pl.col("sent") / pl.col("seconds"))
            .otherwise(0.0)
            .alias("requests_per_s")
        )
        .select(list(STATS_SCHEMA))
    )


@dataclass(frozen=True)
class JudgeResult:
    """The judgments (``.frame``, one per row x item x order x judge) and ``.stats`` (per judge).

    ``print(result)`` gives the totals and one line per judge. For code written when ``judge``
    returned the DataFrame itself, the result also answers the frame's attributes, indexing and
    ``len`` (``result.height``, ``result["status"]``, ``result.filter(...)``); new code should
    use ``result.frame``.
    """

    frame: pl.DataFrame
    stats: pl.DataFrame
    seconds: float = 0.0

    @property
    def judgments(self) -> pl.DataFrame:
        """The same as ``frame``."""
        return self.frame

    def totals(self) -> dict[str, Any]:
        """The stats summed over judges (throughput over the whole call)."""
        sums = self.stats.select(pl.exclude("judge", "seconds", "requests_per_s").sum()).row(0, named=True)
        sums["seconds"] = self.seconds
        sums["requests_per_s"] = sums["sent"] / self.seconds if self.seconds > 0 else 0.0
        return sums

    def __repr__(self) -> str:
        t = self.totals()
        lines = [
            f"JudgeResult: {t['judgments']} judgments from {self.stats.height} judge(s) in {t['seconds']:.1f} s: "
            f"{t['sent']} sent, {t['from_store']} answered from the store; {t['ok']} ok, {t['failed']} failed; "
            f"{t['retries']} retries; ${t['cost_usd']:.4f}; {t['requests_per_s']:.1f} requests/s"
        ]
        for s in self.stats.iter_rows(named=True):
            lines.append(
                f"  {s['judge']}: {s['sent']} sent, {s['from_store']} from the store, {s['ok']} ok, "
                f"{s['failed']} failed, {s['retries']} retries, ${s['cost_usd']:.4f}, "
                f"{s['requests_per_s']:.1f} requests/s"
            )
        lines.append("  .frame: the judgments (polars DataFrame); .stats: these figures per judge")
        return "\n".join(lines)

    # --- the DataFrame's own interface, for code written when judge() returned the frame ---
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never forward dunders/privates (copy, pickle, IPython probes)
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "frame"), name)

    def __getitem__(self, item: Any) -> Any:
        return self.frame[item]

    def __len__(self) -> int:
        return self.frame.height
