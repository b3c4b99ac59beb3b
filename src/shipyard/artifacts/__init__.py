"""Content-addressed artifact storage: blobs on fsspec, artifact paths and garbage collection."""

from __future__ import annotations

from shipyard.artifacts.blobs import BlobInfo as BlobInfo
from shipyard.artifacts.blobs import BlobStore as BlobStore
from shipyard.artifacts.blobs import validate_digest as validate_digest
from shipyard.artifacts.gc import GcReport as GcReport
from shipyard.artifacts.gc import collect_garbage as collect_garbage
from shipyard.artifacts.paths import iter_local_files as iter_local_files
from shipyard.artifacts.paths import normalize_artifact_path as normalize_artifact_path

__all__ = [
    "BlobInfo",
    "BlobStore",
    "GcReport",
    "collect_garbage",
    "iter_local_files",
    "normalize_artifact_path",
    "validate_digest",
]
