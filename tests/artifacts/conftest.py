"""A BlobStore on the local filesystem and on fsspec's in-memory one, for every blob test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from shipyard.artifacts import BlobStore


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield BlobStore(str(tmp_path / "store"))
        return
    name = f"/shipyard-test-{os.urandom(8).hex()}"
    yield BlobStore(f"memory://{name}")
    fs = fsspec.filesystem("memory")
    if fs.exists(name):
        fs.rm(name, recursive=True)
