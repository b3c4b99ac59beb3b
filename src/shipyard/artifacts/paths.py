"""Artifact paths inside a run: validation, normalization and local file discovery."""

from __future__ import annotations

import os
import re
from pathlib import Path

from shipyard.errors import InvalidInput, NotFound
from shipyard.store.validation import check_text

MAX_ARTIFACT_PATH_LENGTH = 1000
# "C:\x", "C:/x" and drive-relative "C:x" all name a place outside the run on Windows.
_DRIVE_RE = re.compile(r"[A-Za-z]:")


def normalize_artifact_path(path: str) -> str:
    """Validate a path inside a run's artifact tree; return it as a relative POSIX path."""
    if not isinstance(path, str):
        raise InvalidInput(f"invalid artifact path {path!r}: it must be a string")
    if path == "":
        raise InvalidInput(f"invalid artifact path {path!r}: it is empty")
    check_text(path, "artifact path")
    if "\0" in path:
        raise InvalidInput(f"invalid artifact path {path!r}: it contains a NUL character")
    if path.startswith(("/", "\\")) or _DRIVE_RE.match(path):
        raise InvalidInput(f"invalid artifact path {path!r}: it must be relative, not absolute")
    # Backslashes count as separators so a path written on Windows means the same everywhere.
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        raise InvalidInput(f"invalid artifact path {path!r}: '..' is not allowed")
    normalized = "/".join(p for p in parts if p not in ("", "."))
    if not normalized:
        raise InvalidInput(f"invalid artifact path {path!r}: it names no file")
    if len(normalized) > MAX_ARTIFACT_PATH_LENGTH:
        raise InvalidInput(
            f"invalid artifact path {path[:80]!r}...: longer than "
            f"{MAX_ARTIFACT_PATH_LENGTH} characters"
        )
    return normalized


def iter_local_files(source: str | os.PathLike[str], dest: str | None) -> list[tuple[str, Path]]:
    """(artifact path, absolute local path) for a file or every regular file under a folder.

    A file goes to ``dest`` (default: its name). A folder's files go under ``dest``
    (default: the folder's name; ``""`` or ``"."``: the artifact root).
    """
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInput(f"log_artifact needs a file or folder path, got {source!r}")
    src = Path(os.path.abspath(os.fspath(source)))
    if not src.exists():
        raise NotFound(f"local path {os.fspath(source)!r} does not exist")
    at_root = dest in ("", ".")
    if src.is_file():
        return [(normalize_artifact_path(src.name if dest is None or at_root else dest), src)]
    if not src.is_dir():
        raise InvalidInput(f"local path {os.fspath(source)!r} is neither a file nor a folder")
    prefix = "" if at_root else (src.name if dest is None else dest)
    found: list[tuple[str, Path]] = []
    # os.walk does not descend into symlinked folders unless asked to.
    for folder, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in filenames:
            local = Path(folder, name)
            if not local.is_file():
                continue  # sockets, FIFOs and broken symlinks have no content to store
            rel = local.relative_to(src).as_posix()
            found.append((normalize_artifact_path(f"{prefix}/{rel}" if prefix else rel), local))
    found.sort(key=lambda item: item[0])
    return found
