"""Batch APIs (OpenAI Files+Batches, Anthropic Message Batches): submit, poll, collect, resume.

Batch judging is half the price of live judging and takes up to 24 h. Everything that must
survive a crash or a restart is in a ledger next to the build's output (``ledger.py``), so a
re-run re-attaches to the batches it already paid for instead of submitting them again.
See docs/batch.md.
"""
