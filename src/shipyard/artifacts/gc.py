"""Garbage collection of blobs that no run references any more."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shipyard.artifacts.blobs import BlobStore
from shipyard.errors import NotFound


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection deleted (or would delete, in a dry run) and what it kept."""

    deleted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept: int = 0
    dry_run: bool = False
    temp_files_removed: int = 0


def collect_garbage(
    blobs: BlobStore,
    referenced: set[str],
    *,
    dry_run: bool = False,
    grace_seconds: float = 3600.0,
    now: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> GcReport:
    """Delete unreferenced blobs and temp uploads older than the grace period.

    The grace period protects blobs written by a run that has not recorded its manifest yet.
    ``progress`` is called after each blob examined with the count examined so far.
    """
    cutoff = (time.time() if now is None else now) - grace_seconds
    deleted: list[str] = []
    freed = 0
    kept = 0
    # iter_blobs lists one prefix folder at a time, so deleting as we go is safe and streams.
    for examined, info in enumerate(blobs.iter_blobs(), start=1):
        if info.digest in referenced or info.mtime >= cutoff:
            kept += 1
        else:
            removed = True
            if not dry_run:
                try:
                    blobs.delete(info.digest)
                except NotFound:
                    removed = False  # another collector got there first
            if removed:
                deleted.append(info.digest)
                freed += info.size
        if progress is not None:
            progress(examined)
    temp_removed = 0
    for path, mtime in list(blobs.iter_temp_files()):
        if mtime < cutoff:
            if not dry_run:
                blobs.remove_temp_file(path)
            temp_removed += 1
    return GcReport(
        deleted=deleted,
        freed_bytes=freed,
        kept=kept,
        dry_run=dry_run,
        temp_files_removed=temp_removed,
    )
