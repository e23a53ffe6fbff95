"""Deployment infrastructure: work pool setup, local stack helpers (not part of the package)."""
