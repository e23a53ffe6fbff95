"""Test helpers that ship with the package (used by tests/ and benchmarks/): no Prefect here."""
