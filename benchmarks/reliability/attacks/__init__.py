"""Targeted attacks: short scenarios that try one way of breaking a build, beside the kill runs.

The faulted builds (``suite.py``) prove that crashes and provider faults lose nothing; the
attacks here each go after one specific weakness (a hostile reply, a bad batch result line, a
key echoed in an error body, a republish killed mid-upload, a corrupt ledger ...) and report
what they tried and every invariant that broke.

An attack is a module in this package with a function decorated ``@attack("name")`` taking an
``AttackContext`` and returning an ``AttackResult``. Modules are found by ``pkgutil``, so adding
one is adding a file. Each attack gets its own empty folder and must stop by itself in seconds.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AttackFn = Callable[["AttackContext"], "AttackResult"]
_REGISTRY: dict[str, AttackFn] = {}


@dataclass
class AttackContext:
    """What an attack may use: its own folder, the suite's S3 server and Prefect API."""

    root: Path  # an empty folder of the attack's own
    env: dict[str, str]  # environment for child processes (PREFECT_API_URL set)
    s3: Any  # benchmarks.reliability.services.S3Services (direct_url, proxy, client(), new_bucket())
    quick: bool = False
    say: Callable[[str], None] = print


@dataclass
class AttackResult:
    """What one attack tried and what broke. ``tried`` > 0 proves it ran."""

    tried: int
    violations: list[str] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)
    scan_dirs: list[Path] = field(default_factory=list)  # folders the secrets scan must read
    buckets: list[str] = field(default_factory=list)  # buckets the secrets scan must read


def attack(name: str) -> Callable[[AttackFn], AttackFn]:
    """Register ``fn`` as the attack ``name``."""

    def register(fn: AttackFn) -> AttackFn:
        if name in _REGISTRY:
            raise ValueError(f"attack {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return register


def all_attacks() -> dict[str, AttackFn]:
    """Every attack in this package, by name (modules imported on first call)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def run_attacks(ctx_for: Callable[[str], AttackContext]) -> dict[str, AttackResult]:
    """Run every attack, each with the context ``ctx_for(name)``; an attack that raises is a
    violation of its own (the suite must never hide a crash of its attacker)."""
    results: dict[str, AttackResult] = {}
    for name, fn in all_attacks().items():
        ctx = ctx_for(name)
        try:
            results[name] = fn(ctx)
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed
            results[name] = AttackResult(tried=0, violations=[f"attack crashed: {type(exc).__name__}: {exc}"])
    return results
