"""Shared pytest setup. Fixture modules live in tests/fixtures/ and are listed here."""

from __future__ import annotations

import os

# Prefect must never touch the developer's own profile or phone home during tests.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

pytest_plugins: list[str] = [
    # one line per fixtures module, e.g. "tests.fixtures.s3"
    "tests.fixtures.attacks",
    "tests.fixtures.prefect",
    "tests.fixtures.prefect_server",
    "tests.fixtures.s3",
    "tests.fixtures.simulator",
    "tests.fixtures.vllm_engine",
]
