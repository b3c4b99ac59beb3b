from __future__ import annotations

import os
import time
from pathlib import Path

from shipyard.artifacts import BlobStore, GcReport, collect_garbage

GRACE = 3600.0
LATER = 10 * GRACE  # seconds ahead of now: every blob written by the test is then old


def _age(root: Path, digest: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(root / "blobs" / "sha256" / digest[:2] / digest, (then, then))


def test_deletes_only_unreferenced_old_blobs(store: BlobStore) -> None:
    keep, _ = store.put_bytes(b"keep me")
    drop1, size1 = store.put_bytes(b"drop one")
    drop2, size2 = store.put_bytes(b"drop two!")
    report = collect_garbage(store, {keep}, now=time.time() + LATER)
    assert report == GcReport(
        deleted=sorted([drop1, drop2]), freed_bytes=size1 + size2, kept=1, dry_run=False
    )
    assert store.exists(keep)
    assert not store.exists(drop1)
    assert not store.exists(drop2)


def test_grace_period_protects_young_blobs(store: BlobStore) -> None:
    digests = {store.put_bytes(data)[0] for data in (b"a", b"b", b"c")}
    report = collect_garbage(store, set())
    assert (report.deleted, report.freed_bytes, report.kept) == ([], 0, 3)
    assert all(store.exists(d) for d in digests)


def test_grace_uses_each_blob_mtime(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    old, old_size = store.put_bytes(b"old and unreferenced")
    young, _ = store.put_bytes(b"young and unreferenced")
    old_referenced, _ = store.put_bytes(b"old but referenced")
    _age(tmp_path, old, 2 * GRACE)
    _age(tmp_path, old_referenced, 2 * GRACE)
    report = collect_garbage(store, {old_referenced}, grace_seconds=GRACE)
    assert (report.deleted, report.freed_bytes, report.kept) == ([old], old_size, 2)
    assert store.exists(young)
    assert store.exists(old_referenced)


def test_reput_renews_grace(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    digest, _ = store.put_bytes(b"reused by a new run")
    _age(tmp_path, digest, 2 * GRACE)
    store.put_bytes(b"reused by a new run")
    assert collect_garbage(store, set(), grace_seconds=GRACE).deleted == []
    assert store.exists(digest)


def test_dry_run_deletes_nothing(store: BlobStore) -> None:
    digest, size = store.put_bytes(b"would go")
    report = collect_garbage(store, set(), dry_run=True, now=time.time() + LATER)
    assert report == GcReport(
        deleted=[digest], freed_bytes=size, kept=0, dry_run=True, temp_files_removed=0
    )
    assert store.exists(digest)


def test_old_temp_files_are_removed(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    (tmp_path / "tmp").mkdir()
    stale, fresh = tmp_path / "tmp" / "stale", tmp_path / "tmp" / "fresh"
    stale.write_bytes(b"abandoned upload")
    fresh.write_bytes(b"upload in progress")
    then = time.time() - 2 * GRACE
    os.utime(stale, (then, then))

    assert collect_garbage(store, set(), dry_run=True).temp_files_removed == 1
    assert stale.exists()
    assert collect_garbage(store, set()).temp_files_removed == 1
    assert not stale.exists()
    assert fresh.exists()


def test_progress_is_called_per_blob(store: BlobStore) -> None:
    for data in (b"1", b"2", b"3", b"4"):
        store.put_bytes(data)
    seen: list[int] = []
    collect_garbage(store, set(), progress=seen.append)
    assert seen == [1, 2, 3, 4]


def test_empty_store(store: BlobStore) -> None:
    assert collect_garbage(store, set(), now=time.time() + LATER) == GcReport(
        deleted=[], freed_bytes=0, kept=0, dry_run=False
    )
