"""Names that become folder names and S3 key parts, and the folder they must stay inside.

``dataset``, ``run_id``, judge and generator names are joined into paths
(``{output.dir}/{dataset}/{date}/{run_id}``, ``_store/judgments/{judge}``) and into the keys a
build publishes. One rule for all of them, checked where a name enters (the config models) and
again where a path is laid out, so none can climb out of ``output.dir`` (``..``, ``/``), hide
(a leading ``.``) or put odd bytes into an S3 key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
ALLOWED = "use only letters, digits, '_', '.' and '-', not starting with '.'"


def check_name(
    value: str, field: str, *, max_len: int = 128,
    why: str = "it becomes a folder name and part of the published keys",
) -> str:
    """``value`` when it is a safe path component, else ``ValueError`` naming ``field``.

    Used as a pydantic validator, so the message is what a user reads next to the field.
    """
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value) or len(value) > max_len:
        raise ValueError(
            f"{field} {value!r}: {ALLOWED}, at most {max_len} characters ({why})"
        )
    return value


def ensure_folder(path: str | Path, field: str = "output.dir") -> Path:
    """Create ``path`` (and parents) or raise one clear ``ValueError`` naming ``field``.

    ``mkdir`` on a path that is, or runs through, a file raises ``FileExistsError`` or
    ``NotADirectoryError`` with no hint of which setting is wrong; this says it in one line.
    """
    folder = Path(path)
    check_output_dir(folder, field)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"{field} {str(folder)!r}: cannot create the folder ({exc.strerror or exc}); "
            "name a folder you can write to"
        ) from None
    return folder


def check_output_dir(path: str | Path, field: str = "output.dir", fix: str | None = None) -> None:
    """Raise ``ValueError`` when ``path`` cannot be a writable folder; create nothing.

    Cheap enough to run before a build starts: it looks at ``path`` or its nearest existing
    parent only.
    """
    folder = Path(path)
    fix = fix or f"set {field} to a folder path"
    probe = folder
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == folder else f"runs through the file {str(probe)!r}"
        raise ValueError(f"{field} {str(folder)!r} {where}, not a folder; {fix}")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(
            f"{field} {str(folder)!r}: {str(probe)!r} is not writable; {fix}"
        )
