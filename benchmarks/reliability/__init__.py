"""Reliability and security suite: faults, SIGKILL crashes, invariants, secrets, hostile content.

``python -m benchmarks.reliability`` runs the full suite, ``--quick`` a reduced one (CI runs it
through tests/test_reliability_quick.py). The last line printed is one JSON summary; see
docs/reliability.md for what each number means and which must be zero.
"""
