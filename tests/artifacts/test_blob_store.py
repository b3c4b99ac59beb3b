from __future__ import annotations

import hashlib
import os
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pytest

import shipyard.artifacts
from shipyard.artifacts import BlobInfo, BlobStore
from shipyard.errors import InvalidInput, MissingDependency, NotFound

MiB = 1024 * 1024


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _temp_files(store: BlobStore) -> list[str]:
    return [p for p, _ in store.iter_temp_files()]


def test_public_names() -> None:
    assert sorted(shipyard.artifacts.__all__) == [
        "BlobInfo",
        "BlobStore",
        "GcReport",
        "collect_garbage",
        "iter_local_files",
        "normalize_artifact_path",
        "validate_digest",
    ]
    for name in shipyard.artifacts.__all__:
        assert getattr(shipyard.artifacts, name) is not None


def test_put_bytes_digest_matches_hashlib(store: BlobStore) -> None:
    data = b"hello shipyard\n" * 1000
    digest, size = store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert size == len(data)
    assert store.read_bytes(digest) == data


def test_put_file_digest_matches_hashlib(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)  # not a multiple of the chunk size
    src = _write(tmp_path / "src" / "model.bin", data)
    digest, size = store.put_file(src)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert store.size(digest) == len(data)
    assert store.read_bytes(digest) == data


def test_put_empty_bytes(store: BlobStore) -> None:
    digest, size = store.put_bytes(b"")
    assert (digest, size) == (hashlib.sha256(b"").hexdigest(), 0)
    assert store.exists(digest)
    assert store.read_bytes(digest) == b""


def test_local_layout(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "root"))
    digest, _ = store.put_bytes(b"layout")
    assert (tmp_path / "root" / "blobs" / "sha256" / digest[:2] / digest).read_bytes() == b"layout"
    assert list((tmp_path / "root" / "tmp").iterdir()) == []


def test_file_url_root(tmp_path: Path) -> None:
    store = BlobStore(f"file://{tmp_path / 'root'}")
    digest, _ = store.put_bytes(b"via url")
    assert (tmp_path / "root" / "blobs" / "sha256" / digest[:2] / digest).is_file()


def test_memory_layout() -> None:
    name = f"/shipyard-layout-{os.urandom(8).hex()}"
    store = BlobStore(f"memory://{name}")
    fs = fsspec.filesystem("memory")
    try:
        digest, _ = store.put_bytes(b"layout")
        assert fs.cat_file(f"{name}/blobs/sha256/{digest[:2]}/{digest}") == b"layout"
    finally:
        fs.rm(name, recursive=True)


def test_same_content_100_times_is_stored_once(store: BlobStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "same.txt", b"same content")
    results = {store.put_file(src) for _ in range(100)}
    assert results == {(hashlib.sha256(b"same content").hexdigest(), 12)}
    assert [b.digest for b in store.iter_blobs()] == [next(iter(results))[0]]
    assert _temp_files(store) == []


def test_large_file_is_streamed(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    expected = hashlib.sha256()
    with open(src, "wb") as f:
        for i in range(20):
            block = bytes([i]) * MiB
            expected.update(block)
            f.write(block)
    store = BlobStore(str(tmp_path / "store"))
    tracemalloc.start()
    try:
        digest, size = store.put_file(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (digest, size) == (expected.hexdigest(), 20 * MiB)
    # A few 1 MiB chunks may be alive at once; the whole 20 MiB file must never be.
    assert peak < 5 * MiB
    assert store.size(digest) == 20 * MiB


def test_put_file_missing_source(store: BlobStore, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(NotFound, match=r"nope\.txt"):
        store.put_file(missing)


def test_put_file_directory(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="directory"):
        store.put_file(tmp_path)


def test_put_bytes_rejects_str(store: BlobStore) -> None:
    with pytest.raises(InvalidInput):
        store.put_bytes("text")  # type: ignore[arg-type]


def test_open_exists_copy_delete(store: BlobStore, tmp_path: Path) -> None:
    digest, _ = store.put_bytes(b"round trip")
    assert store.exists(digest)
    with store.open(digest) as f:
        assert f.read() == b"round trip"
    dest = tmp_path / "out" / "deep" / "copy.txt"
    store.copy_to(digest, dest)
    assert dest.read_bytes() == b"round trip"
    store.delete(digest)
    assert not store.exists(digest)
    assert list(store.iter_blobs()) == []


def test_missing_digest_is_not_found(store: BlobStore, tmp_path: Path) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(digest)
    for call in (store.open, store.read_bytes, store.size, store.delete):
        with pytest.raises(NotFound, match=digest):
            call(digest)
    dest = tmp_path / "dest" / "x.bin"
    with pytest.raises(NotFound, match=digest):
        store.copy_to(digest, dest)
    assert not dest.exists()


BAD_DIGESTS = [
    "../../etc/passwd",
    "",
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "g" * 64,
    "a" * 64 + "\n",
    "../" + "a" * 61,
    "aa/" + "a" * 61,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
@pytest.mark.parametrize("method", ["exists", "size", "open", "read_bytes", "delete", "copy_to"])
def test_bad_digest_is_invalid_input(
    store: BlobStore, tmp_path: Path, digest: str, method: str
) -> None:
    args: tuple[object, ...] = (digest, tmp_path / "x") if method == "copy_to" else (digest,)
    with pytest.raises(InvalidInput, match="digest"):
        getattr(store, method)(*args)


def test_iter_blobs(store: BlobStore) -> None:
    before = time.time()
    stored = {store.put_bytes(data) for data in (b"one", b"two", b"three!")}
    after = time.time()
    infos = list(store.iter_blobs())
    assert [i.digest for i in infos] == sorted(d for d, _ in stored)
    assert {(i.digest, i.size) for i in infos} == stored
    for info in infos:
        assert isinstance(info, BlobInfo)
        assert before - 2 <= info.mtime <= after + 2
    with pytest.raises(AttributeError):
        infos[0].size = 1  # type: ignore[misc]


def test_iter_blobs_skips_stray_files(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    digest, _ = store.put_bytes(b"real")
    _write(tmp_path / "blobs" / "sha256" / digest[:2] / "notes.txt", b"stray")
    _write(tmp_path / "blobs" / "sha256" / "README", b"stray")
    assert [b.digest for b in store.iter_blobs()] == [digest]


def test_iter_blobs_on_empty_store(store: BlobStore) -> None:
    assert list(store.iter_blobs()) == []


def test_reput_refreshes_mtime(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    digest, _ = store.put_bytes(b"old")
    blob = tmp_path / "blobs" / "sha256" / digest[:2] / digest
    os.utime(blob, (1_000_000, 1_000_000))
    store.put_bytes(b"old")
    assert blob.stat().st_mtime > time.time() - 60


def test_concurrent_puts_of_same_content(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 5)
    src = _write(tmp_path / "shared.bin", data)
    barrier = threading.Barrier(8)

    def put(_: int) -> tuple[str, int]:
        barrier.wait(timeout=30)
        return store.put_file(src)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(put, range(8)))
    assert set(results) == {(hashlib.sha256(data).hexdigest(), len(data))}
    assert [b.digest for b in store.iter_blobs()] == [results[0][0]]
    assert store.read_bytes(results[0][0]) == data
    assert _temp_files(store) == []


def test_root_and_repr(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    assert store.root == str(tmp_path)
    assert repr(store) == f"BlobStore({str(tmp_path)!r})"


@pytest.mark.parametrize("root", ["", "   ", "nosuchproto://x/y"])
def test_bad_root(root: str) -> None:
    with pytest.raises(InvalidInput):
        BlobStore(root)


def test_s3_without_s3fs_names_the_extra() -> None:
    try:
        import s3fs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("s3fs is installed")
    with pytest.raises(MissingDependency, match=r"shipyard\[s3\]"):
        BlobStore("s3://bucket/prefix")


def test_an_unwritable_root_is_a_store_error(tmp_path: Path) -> None:
    from shipyard.errors import StoreError

    (tmp_path / "file").write_text("in the way")
    blobs = BlobStore(str(tmp_path / "file" / "store"))
    with pytest.raises(StoreError, match="cannot write to the artifact store"):
        blobs.put_bytes(b"data")
