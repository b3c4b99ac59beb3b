"""File fingerprints: the content of the files a step declares it reads (``reads=``).

A file's digest is cached by its stat signature (path, size, mtime, ctime, inode, device),
except while it is too fresh to trust; the same signature tells ``code.py`` when a module's
source may have changed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.fingerprint.values import _sha256

_RACY_NS = 2_000_000_000  # a file changed this recently may change again within one mtime tick
_MAX_STAT_CACHE = 100_000
_stat_cache: dict[tuple[Any, ...], str] = {}
_stat_lock = threading.Lock()


def files_fingerprint(patterns: Sequence[str], root: Path | str) -> tuple[str, dict[str, str]]:
    """Digest of the files matching glob ``patterns`` under ``root``, and {relpath: sha256}.

    Patterns are relative to ``root``; ``**`` recurses; as in a shell, ``*`` skips dot files; a
    pattern naming a folder takes every file under it. A pattern matching no file is an error.
    """
    if isinstance(patterns, (str, bytes)):
        raise InvalidInput(f"file patterns must be a list of globs, not one string: {patterns!r}")
    base = Path(root)
    files: dict[str, str] = {}
    for pattern in patterns:
        if not pattern or os.path.isabs(pattern):
            raise InvalidInput(f"file pattern {pattern!r} must be a path relative to {base}")
        matched = _matching_files(pattern, base)
        if not matched:
            raise InvalidInput(f"file pattern {pattern!r} matches no file under {base}")
        for rel in matched:
            files[rel] = _file_sha256(base / rel)
    listing = sorted(files.items())
    return _sha256(json.dumps(listing, separators=(",", ":"))), dict(listing)


def _matching_files(pattern: str, base: Path) -> set[str]:
    found: set[str] = set()
    for match in glob.glob(pattern, root_dir=base, recursive=True):
        found.add(match)
        if (base / match).is_dir():  # a folder: every file under it
            inner = os.path.join(glob.escape(match), "**", "*")
            found.update(glob.glob(inner, root_dir=base, recursive=True))
    return {Path(os.path.normpath(m)).as_posix() for m in found if (base / m).is_file()}


def _stat_signature(path: str | os.PathLike[str]) -> tuple[Any, ...] | None:
    """What identifies a file's content cheaply; None when too fresh to trust (racy)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < _RACY_NS:
        return None
    return (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _file_sha256(path: Path) -> str:
    key = _stat_signature(path.resolve())
    cached = _stat_cache.get(key) if key is not None else None
    if cached is not None:
        return cached
    digest = _hash_file(path)
    if key is not None and _stat_signature(path.resolve()) == key:  # unchanged while hashed
        with _stat_lock:
            if len(_stat_cache) >= _MAX_STAT_CACHE:
                _stat_cache.clear()
            _stat_cache[key] = digest
    return digest


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
