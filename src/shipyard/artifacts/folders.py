"""Folders of files between the local disk and the blob store.

A registered model version or a logged model is a manifest of ``path -> digest``. To use one
from disk, its files are copied once into a local cache folder named after the manifest's
digest, so the next use copies nothing; the folder is only ever renamed into place whole, so a
half-copied folder is never seen.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from shipyard.artifacts.blobs import BlobStore
from shipyard.errors import NotFound
from shipyard.store.entities import ArtifactEntry


def cache_root(artifact_root: str) -> Path:
    """Beside the blobs when they are local; the user's cache folder when they are remote."""
    if "://" not in artifact_root or artifact_root.startswith("file://"):
        return Path(artifact_root.removeprefix("file://")) / "cache" / "folders"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shipyard" / "folders"


def upload_folder(blobs: BlobStore, folder: Path) -> list[ArtifactEntry]:
    """Store every file under ``folder``; paths in the result are relative to it."""
    entries = []
    for local in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest, size = blobs.put_file(local)
        entries.append(ArtifactEntry(local.relative_to(folder).as_posix(), digest, size))
    return entries


def materialize(
    blobs: BlobStore, files: Sequence[ArtifactEntry], digest: str, what: str, marker: str
) -> Path:
    """A local folder holding ``files``; ``marker`` is a file that must be among them (it
    also tells that a cached folder is complete)."""
    target = cache_root(blobs.root) / digest
    if (target / marker).is_file():
        return target
    if not any(f.path == marker for f in files):
        raise NotFound(f"{what} holds no {marker}, so it is not what was asked for")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        for entry in files:
            try:
                blobs.copy_to(entry.digest, tmp / entry.path)
            except NotFound:
                raise NotFound(
                    f"{what}: the file {entry.path!r} (blob {entry.digest[:12]}) is missing "
                    f"from the artifact store {blobs.root}"
                ) from None
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / marker).is_file():  # not just another process winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
