"""Helpers for the local stack (infra/local/start_stack.sh) and the deployment tests."""
