"""Where a published run's files live in S3: immutable, content-addressed versions and a pointer.

A run is published under its prefix ``{base}{dataset}/{date}/{run_id}/``::

    manifest.json            the pointer: written last, names every file with its key and sha256
    v/{version}/{name}       the files of one version of the run, never overwritten with other bytes

``version`` is the first 16 hex characters of ``content_digest``: the sha256 of one line
``{name}\\t{sha256}\\n`` per file, in name order. Identical content therefore maps to the same
keys (a rebuild of the same inputs uploads nothing but the manifest), and changed content to new
keys, so publishing a new version never touches the objects the current manifest points at. A
reader reads ``manifest.json`` and then exactly the keys it lists: whenever it looks, it sees one
complete version, the old or the new, never a mix.

Keys in the manifest are relative to the manifest's own folder. Manifests written before this
layout have no ``key``: their files sit at ``{name}`` beside the manifest (``object_key_of``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

VERSIONS_DIR = "v"
VERSION_CHARS = 16


def content_digest(files: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 hex over ``{name}\\t{sha256}\\n`` for every file in name order."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\t{files[name]['sha256']}\n".encode())
    return h.hexdigest()


def version_of(digest: str) -> str:
    """The version folder name for a content digest."""
    return digest[:VERSION_CHARS]


def object_key(version: str, name: str) -> str:
    """The key of file ``name`` of ``version``, relative to the run prefix."""
    return f"{VERSIONS_DIR}/{version}/{name}"


def versioned_files(files: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, dict[str, Any]]]:
    """``(content_digest, files with a "key" added to each entry)``."""
    digest = content_digest(files)
    version = version_of(digest)
    return digest, {name: {**entry, "key": object_key(version, name)} for name, entry in files.items()}


def object_key_of(name: str, entry: Mapping[str, Any]) -> str:
    """A manifest entry's key relative to the run prefix (old manifests: the file name)."""
    return str(entry.get("key") or name)


def check_relative(name: str) -> str:
    """``name`` if it is a plain relative path (no ``..``, not absolute), else ``ValueError``.

    A manifest read back from a bucket decides where a download writes; it must not reach
    outside the destination folder.
    """
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(part in ("..", "") for part in name.split("/")):
        raise ValueError(f"manifest entry {name!r} is not a plain relative path")
    return name
