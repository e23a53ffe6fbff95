"""Turning judge replies into judgment records, shared by the live, batch and GPU paths."""
