"""Create or update judgeflow's work pools, work queues and rate limits on a Prefect server.

Why a Python script rather than a dozen ``prefect work-pool`` / ``prefect gcl`` CLI calls: each
CLI call starts a fresh interpreter (seconds each), and ``create`` fails when the object already
exists, so a re-runnable shell script needs create-or-update logic per object anyway. This script
reads the declarative ``infra/pools.yaml`` and applies it through the Prefect client in one
process; running it twice is a no-op, running it after editing the YAML updates the server.

Usage (``PREFECT_API_URL`` must point at the server)::

    python infra/setup_pools.py                       # everything in infra/pools.yaml
    python infra/setup_pools.py --pool judgeflow-local --rpm openai-rpm=500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import get_client
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    WorkPoolCreate,
    WorkPoolUpdate,
)
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from pydantic import BaseModel, ConfigDict, Field

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT_ROOT / "infra" / "pools.yaml"


class QueueSpec(BaseModel):
    """A work queue inside a pool."""

    model_config = ConfigDict(extra="forbid")
    name: str
    priority: int = Field(ge=1)
    concurrency_limit: int | None = Field(default=None, ge=0)
    description: str | None = None


class PoolSpec(BaseModel):
    """A work pool with its base job template (a path relative to the project root)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    type: str
    base_job_template: str
    description: str | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    queues: list[QueueSpec] = Field(default_factory=list)

    def template(self) -> dict[str, Any]:
        """The base job template as the API expects it."""
        return json.loads((PROJECT_ROOT / self.base_job_template).read_text(encoding="utf-8"))


class RateLimitSpec(BaseModel):
    """A global concurrency limit used as a requests-per-minute rate limit."""

    model_config = ConfigDict(extra="forbid")
    name: str
    rpm: float = Field(gt=0)
    burst_seconds: float = Field(default=5.0, gt=0)

    @property
    def limit(self) -> int:
        """Slots available at once: ``burst_seconds`` worth of requests (at least 1)."""
        return max(1, math.ceil(self.rpm * self.burst_seconds / 60.0))

    @property
    def slot_decay_per_second(self) -> float:
        """Slots freed per second, i.e. the sustained request rate."""
        return self.rpm / 60.0


class InfraSpec(BaseModel):
    """The whole of ``infra/pools.yaml``."""

    model_config = ConfigDict(extra="forbid")
    work_pools: list[PoolSpec]
    rate_limits: list[RateLimitSpec] = Field(default_factory=list)


def load_spec(path: Path = DEFAULT_CONFIG, rpm_overrides: dict[str, float] | None = None) -> InfraSpec:
    """Read the YAML and apply ``--rpm name=N`` overrides (unknown names are an error)."""
    spec = InfraSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    for name, rpm in (rpm_overrides or {}).items():
        matches = [r for r in spec.rate_limits if r.name == name]
        if not matches:
            known = ", ".join(r.name for r in spec.rate_limits)
            raise SystemExit(f"--rpm: unknown rate limit {name!r} (known: {known})")
        matches[0].rpm = rpm
    return spec


async def apply_pool(client: PrefectClient, pool: PoolSpec, log: Any = print) -> None:
    """Create the pool or update its template/limit, then its queues."""
    template = pool.template()
    try:
        await client.create_work_pool(
            WorkPoolCreate(
                name=pool.name, type=pool.type, description=pool.description,
                base_job_template=template, concurrency_limit=pool.concurrency_limit,
            )
        )
        log(f"created work pool {pool.name} ({pool.type})")
    except ObjectAlreadyExists:
        existing = await client.read_work_pool(pool.name)
        if existing.type != pool.type:
            raise SystemExit(
                f"work pool {pool.name} exists with type {existing.type!r}, not {pool.type!r}: "
                f"delete it first (prefect work-pool delete {pool.name})"
            ) from None
        await client.update_work_pool(
            pool.name,
            WorkPoolUpdate(
                description=pool.description, base_job_template=template,
                concurrency_limit=pool.concurrency_limit,
            ),
        )
        log(f"updated work pool {pool.name}")
    for queue in pool.queues:
        await apply_queue(client, pool.name, queue, log)


async def apply_queue(client: PrefectClient, pool_name: str, queue: QueueSpec, log: Any = print) -> None:
    """Create the queue or update its priority, limit and description."""
    try:
        existing = await client.read_work_queue_by_name(queue.name, work_pool_name=pool_name)
    except ObjectNotFound:
        await client.create_work_queue(
            name=queue.name, work_pool_name=pool_name, priority=queue.priority,
            concurrency_limit=queue.concurrency_limit, description=queue.description,
        )
        log(f"  created queue {pool_name}/{queue.name}")
        return
    await client.update_work_queue(
        existing.id, priority=queue.priority, concurrency_limit=queue.concurrency_limit,
        description=queue.description or "",
    )
    log(f"  updated queue {pool_name}/{queue.name}")


async def apply_rate_limit(client: PrefectClient, rl: RateLimitSpec, log: Any = print) -> None:
    """Create or update a global concurrency limit with slot decay (a rate limit)."""
    try:
        await client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(
                name=rl.name, limit=rl.limit, slot_decay_per_second=rl.slot_decay_per_second,
                active=True,
            )
        )
        verb = "created"
    except ObjectAlreadyExists:
        await client.update_global_concurrency_limit(
            rl.name,
            GlobalConcurrencyLimitUpdate(
                limit=rl.limit, slot_decay_per_second=rl.slot_decay_per_second, active=True,
            ),
        )
        verb = "updated"
    log(f"{verb} rate limit {rl.name}: {rl.limit} slots, {rl.slot_decay_per_second:.2f}/s (~{rl.rpm:g} rpm)")


async def apply(spec: InfraSpec, pools: list[str] | None = None, log: Any = print) -> None:
    """Apply the pools (all, or only those named) and every rate limit."""
    known = {p.name for p in spec.work_pools}
    unknown = sorted(set(pools or []) - known)
    if unknown:
        raise SystemExit(f"--pool: unknown pool(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    async with get_client() as client:
        for pool in spec.work_pools:
            if not pools or pool.name in pools:
                await apply_pool(client, pool, log)
        for rl in spec.rate_limits:
            await apply_rate_limit(client, rl, log)


def _parse_rpm(values: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values:
        name, sep, number = item.partition("=")
        try:
            out[name.strip()] = float(number)
        except ValueError:
            raise SystemExit(f"--rpm expects NAME=NUMBER, got {item!r}") from None
        if not sep or out[name.strip()] <= 0:
            raise SystemExit(f"--rpm expects NAME=POSITIVE_NUMBER, got {item!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="pools YAML")
    parser.add_argument("--pool", action="append", default=[], help="only this pool (repeatable)")
    parser.add_argument("--rpm", action="append", default=[], metavar="NAME=N",
                        help="override a rate limit's requests per minute (repeatable)")
    args = parser.parse_args(argv)
    spec = load_spec(args.config, _parse_rpm(args.rpm))
    asyncio.run(apply(spec, args.pool))
    return 0


if __name__ == "__main__":
    sys.exit(main())
